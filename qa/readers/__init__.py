"""Extractive readers behind one protocol (see `base.Reader`)."""
