"""Questions for the built-in corpus: the ones `scripts/bench_ask_latency.py` asks, answerable and not."""

BUILTIN_QUESTIONS = (
    "What was the median overall survival with STRIDE?",
    "What is the overall survival hazard ratio for STRIDE versus sorafenib?",
    "Which kinases does lenvatinib inhibit?",
    "What is regorafenib approved for?",
    "What was the 36-month overall survival rate for STRIDE?",
    "Which drug is a deuterated sorafenib derivative?",
    "What are desmoid tumors?",
    "What is the boiling point of tungsten at sea level?",
)
