"""POST /v1/feedback: thumbs up/down on an answer, appended to the feedback log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from assistant.api import deps
from assistant.service import AssistantService
from assistant.api.models import FeedbackAck, FeedbackRequest, error_responses
from assistant.api.security import require_api_key
from assistant.records import Feedback

router = APIRouter(prefix="/v1", tags=["feedback"], dependencies=[Depends(require_api_key)])


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackAck,
    summary="Record feedback on an answer",
    description="Appended as one JSON line to the feedback log, which `assistant eval` can turn into test cases.",
    responses=error_responses(401, 413, 422, 429, 503),
)
async def feedback(body: FeedbackRequest, service: AssistantService = Depends(deps.get_service)) -> Any:
    await deps.call_service_async(service.feedback, Feedback(**body.model_dump()))
    return {"status": "recorded"}
