"""LLM client helpers: errors become one LLMError line; configured names and URLs are honoured."""

from __future__ import annotations

from pathlib import Path

import httpx
import httpx2  # openai 3.x's transport; our own probes use httpx: both must be converted
import openai
import pytest

from rag_app.errors import LLMError
from rag_app.serving.llm import chat_model, llm_errors, served_model_name
from rag_app.settings import Settings

URL = "http://127.0.0.1:9/v1"
REQUEST = httpx2.Request("POST", URL + "/chat/completions")


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (openai.APITimeoutError(request=REQUEST), "did not answer in time"),
        (openai.APIConnectionError(request=REQUEST), "lost connection"),
        (httpx.RemoteProtocolError("peer closed connection"), "lost connection"),
        (httpx2.RemoteProtocolError("peer closed connection"), "lost connection"),
        (httpx.ReadTimeout("read timed out"), "did not answer in time"),
        (httpx2.ReadTimeout("read timed out"), "did not answer in time"),
        (
            openai.NotFoundError(
                "model not found", response=httpx2.Response(404, request=REQUEST), body=None
            ),
            "HTTP 404",
        ),
    ],
)
def test_llm_errors_become_one_clear_line(error: Exception, needle: str) -> None:
    with pytest.raises(LLMError, match=needle) as info, llm_errors(URL):
        raise error
    assert URL in str(info.value)
    assert "\n" not in str(info.value)


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), llm_errors(URL):
        raise KeyError("not an LLM problem")


def test_configured_served_name_needs_no_request(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_served_name="my-model")
    assert served_model_name(URL, settings) == "my-model"


def test_chat_model_honours_overrides_without_contacting_a_server(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_request_timeout=7.0, llm_max_retries=3)
    llm = chat_model(settings, base_url=URL, model="m", max_tokens=11)
    assert (llm.model_name, llm.max_tokens, llm.max_retries) == ("m", 11, 3)
    assert llm.request_timeout == 7.0
    assert llm.openai_api_base == URL
