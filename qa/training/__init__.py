"""Training the project's extractive reader: windows from SQuAD-format data (`data`), the loop with dev checks
and checkpoints (`trainer`), the `qa train-reader`/`eval-reader`/`export-reader` commands (`cli`) and the
shipped model's card (`model_card`)."""
