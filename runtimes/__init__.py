"""Model runtimes shared by the encoder (index) and the reader (qa): where model folders are found, their
fingerprints, and ONNX export, caching and sessions."""
