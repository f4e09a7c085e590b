# What rule released_concepts alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
RELEASED_DATA = Path(CONCEPTS["released"]["data_dir"])


# The release's folders the import reads (their files are inputs: replacing one re-imports).
RELEASED_FOLDERS = [
    f"generated_texts/{CONCEPTS['released']['model_dir']}",
    "axbench_instructions",
    "axbench_llm_scores",
    "steering_factors",
]


def released_concept_files(wildcards):
    return sorted(
        str(path)
        for folder in RELEASED_FOLDERS
        for path in (RELEASED_DATA / folder).glob("*.json")
    )
