"""The checks the settings ask for, each with the backend's Yes/No judge where it is switched on.

The checks themselves (``assistant.checks``) only ask a ``YesNoJudge`` they are given; choosing
the model that answers is done here, so no check module loads a model. The ask, debate and spar
chains build their checks with these on first use (a spar chain may be given its verifier instead:
a benchmark's).
"""

from __future__ import annotations

from assistant.checks.relevance import ModelAnswerJudge, RebuttalCheck, RelevanceCheck
from assistant.checks.verify import Verifier
from assistant.core.settings import Settings
from assistant.models.judge import make_judge
from assistant.models.yes_no import YesNoJudge


def make_verifier(settings: Settings) -> Verifier:
    """The verifier the settings ask for; with "rules+llm" the backend's model is its judge (``judge.make_judge``)."""
    return Verifier(make_judge(settings)) if settings.verifier == "rules+llm" else Verifier()


def _model_judge(settings: Settings) -> YesNoJudge | None:
    """The backend's Yes/No judge when ``relevance = "rules+llm"`` (``judge.make_judge``): locally the
    same cached model context as the verifier's judge (``LlamaModelCache``), so nothing is loaded twice."""
    return make_judge(settings) if settings.relevance == "rules+llm" else None


def make_rebuttal_check(settings: Settings) -> RebuttalCheck | None:
    """The rebuttal check the ``relevance`` setting asks for (None when off)."""
    return None if settings.relevance == "off" else RebuttalCheck(_model_judge(settings))


def make_relevance_check(settings: Settings) -> RelevanceCheck | None:
    """The answer check the ``relevance`` setting asks for (None when off)."""
    if settings.relevance == "off":
        return None
    judge = _model_judge(settings)
    return RelevanceCheck(ModelAnswerJudge(judge) if judge is not None else None)
