"""One router per resource: ask, documents, health, and the web page."""
