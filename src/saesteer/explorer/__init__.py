"""The feature explorer: one self-contained HTML page per scored feature and one sortable,
filterable table of all of them, rendered from the run's Parquet with the Jinja2 templates
in `saesteer/templates/`, linked from the Snakemake report's front page and captions.

- `pages`: a feature page's values, assembled from the layer's tables
- `tokens`: the tokenizer's pieces, the shaded top activating contexts, peak tokens
- `charts`: the coordinates of a page's activation histogram and steering plot
- `steered`: continuations per factor with GenSuccess@20's tokens, concept answers
- `index`: the front page's rows and its input-vs-output scatter
- `render`: the templates' environment and filters, and writing the pages
"""
