"""Question answering over an index: question analysis, readers, ranking and abstention, the pipeline, the CLI."""
