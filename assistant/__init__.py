"""Debate Assistant: grounded answers and debates over the articles a user supplies.

Importing the package pins the process to offline behaviour before any Hugging Face,
Gradio or Chroma module is imported, so no code path can quietly reach a hub or send
telemetry. URL ingest that the user asks for is the one deliberate network use.
"""

import os

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}
for _key, _value in _OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
