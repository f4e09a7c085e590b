# What rule concept_generations alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
def concept_instruction_files(wildcards):
    """A user's instruction file is an input, so editing it reruns the answers."""
    spec = CONCEPTS["instructions"]
    return [spec["file"]] if isinstance(spec, dict) else []
