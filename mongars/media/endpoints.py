"""Speech audio for a stored answer: GET /api/v1/conversation/turns/{id}/speech."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from mongars.deps import CurrentUser, RuntimeDep, SessionDep
from mongars.errors import NotFound
from mongars.media.repository import MediaRepository
from mongars.media.tts import EspeakTTS
from mongars.persona.contributor import persona_service
from mongars.persona.steering import choices

router = APIRouter(prefix="/api/v1/conversation", tags=["conversation"])


@router.get(
    "/turns/{turn_id}/speech",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The answer spoken (WAV)"},
        404: {"description": "No such turn for this user"},
        501: {"description": "No text-to-speech engine is installed"},
    },
)
async def turn_speech(
    turn_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """The stored answer spoken by espeak-ng, in the user's language when known."""
    turn = await MediaRepository(session).turn(turn_id)
    if turn is None or turn.user_id != user.id or not turn.response.strip():
        raise NotFound(f"no answer {turn_id} for this user")
    persona = persona_service(runtime)
    picked = choices(await persona.load(user.id), persona.cfg).get("language")
    language = str(picked.value) if picked is not None else "en"
    settings = runtime.settings
    tts = EspeakTTS(settings.tts_binary, settings.chat.syllables_per_second)
    audio = await tts.synthesize(turn.response, language)
    return Response(
        audio,
        media_type="audio/wav",
        headers={
            "Content-Disposition": f'inline; filename="turn-{turn_id}.wav"',
            "Content-Language": language,
        },
    )
