# What rule concept_ratings alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
def concept_rubric_files(wildcards):
    """A chat judge's rubric file is an input, so editing it rerates."""
    judge = CONCEPTS["judge"]
    rubrics = judge["chat"]["rubrics"] if judge["kind"] == "chat" else None
    return [rubrics] if rubrics else []
