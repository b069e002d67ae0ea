"""Switching off the model libraries' progress bars, for output that a person or a JSON reader takes as a whole.

Progress bars are drawn on stderr, outside logging. Each library reads its switch when it loads (transformers'
"Loading weights", huggingface_hub's downloads, plain tqdm such as sentence-transformers' "Batches"), so
`quiet_libraries` sets the environment for those not imported yet and calls the switch of those already imported.
The service calls it before its JSON logs start; `qa ask` before it loads the models (one question: the answer is
the output). Long commands (`qa index`, `qa eval`, training) keep their bars.
"""

from __future__ import annotations

import os
import sys

QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def quiet_libraries() -> None:
    """Switch off the libraries' progress bars in this process (and the children it starts)."""
    os.environ.update(QUIET_ENV)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
