# Generated from sdk/openapi.json by sdk/python/scripts/generate.py: do not edit,
# run `make sdk-generate`.
# mypy: disable-error-code=assignment

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel
from typing import Annotated, Any, Literal


class AccountExport(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    is_active: Annotated[bool, Field(title="Is Active")]
    is_admin: Annotated[bool, Field(title="Is Admin")]
    username: Annotated[str, Field(title="Username")]


class ApiKeyCreate(BaseModel):
    name: Annotated[
        str,
        Field(description="a label, e.g. 'Open WebUI'", max_length=100, min_length=1, title="Name"),
    ]
    use_history: Annotated[bool | None, Field(title="Use History")] = True
    use_memory: Annotated[bool | None, Field(title="Use Memory")] = True
    use_persona: Annotated[bool | None, Field(title="Use Persona")] = True


class ApiKeyCreated(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[int, Field(title="Id")]
    key: Annotated[
        str,
        Field(description="the secret key; shown in this response only, never again", title="Key"),
    ]
    last_used_at: Annotated[AwareDatetime | None, Field(title="Last Used At")] = None
    name: Annotated[str, Field(title="Name")]
    prefix: Annotated[
        str,
        Field(description="the first characters of the key, to tell keys apart", title="Prefix"),
    ]
    revoked_at: Annotated[AwareDatetime | None, Field(title="Revoked At")] = None
    use_history: Annotated[bool, Field(title="Use History")]
    use_memory: Annotated[bool, Field(title="Use Memory")]
    use_persona: Annotated[bool, Field(title="Use Persona")]


class ApiKeyOut(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[int, Field(title="Id")]
    last_used_at: Annotated[AwareDatetime | None, Field(title="Last Used At")] = None
    name: Annotated[str, Field(title="Name")]
    prefix: Annotated[
        str,
        Field(description="the first characters of the key, to tell keys apart", title="Prefix"),
    ]
    revoked_at: Annotated[AwareDatetime | None, Field(title="Revoked At")] = None
    use_history: Annotated[bool, Field(title="Use History")]
    use_memory: Annotated[bool, Field(title="Use Memory")]
    use_persona: Annotated[bool, Field(title="Use Persona")]


class ApiKeyUpdate(BaseModel):
    use_history: Annotated[bool | None, Field(title="Use History")] = None
    use_memory: Annotated[bool | None, Field(title="Use Memory")] = None
    use_persona: Annotated[bool | None, Field(title="Use Persona")] = None


class AssistantMessage(BaseModel):
    content: Annotated[str, Field(title="Content")]
    role: Annotated[Literal["assistant"], Field(title="Role")] = "assistant"


class AuditEntryOut(BaseModel):
    action: Annotated[str, Field(title="Action")]
    actor: Annotated[str, Field(title="Actor")]
    address: Annotated[str | None, Field(title="Address")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    detail: Annotated[str, Field(title="Detail")]
    id: Annotated[int, Field(title="Id")]
    target: Annotated[str | None, Field(title="Target")]


class AuditPage(BaseModel):
    items: Annotated[list[AuditEntryOut], Field(title="Items")]
    next_before: Annotated[int | None, Field(title="Next Before")]


class BodyLoginTokenPost(BaseModel):
    password: Annotated[str, Field(max_length=1024, title="Password")]
    username: Annotated[str, Field(max_length=256, title="Username")]


class Path(RootModel[str]):
    root: Annotated[str, Field(max_length=1024, title="Path")]


class BodyUploadDocumentApiV1DocumentsPost(BaseModel):
    collection: Annotated[
        str | None, Field(pattern="^[\\w][\\w./@+ -]{0,99}$", title="Collection")
    ] = "default"
    file: Annotated[
        str,
        Field(
            description="PDF, Markdown, HTML, text or source file",
            json_schema_extra={"contentMediaType": "application/octet-stream"},
            title="File",
        ),
    ]
    path: Annotated[Path | None, Field(title="Path")] = None
    shared: Annotated[bool | None, Field(title="Shared")] = False


class Share(RootModel[float]):
    root: Annotated[
        float,
        Field(
            description="of turns (default MONGARS_TRAINING__CANARY_SHARE)",
            gt=0.0,
            lt=1.0,
            title="Share",
        ),
    ]


class CanaryStart(BaseModel):
    note: Annotated[str | None, Field(max_length=2000, title="Note")] = ""
    share: Annotated[
        Share | None,
        Field(description="of turns (default MONGARS_TRAINING__CANARY_SHARE)", title="Share"),
    ] = None


class ChangeOut(BaseModel):
    action: Annotated[str, Field(title="Action")]
    actor: Annotated[str, Field(title="Actor")]
    at: Annotated[AwareDatetime, Field(title="At")]
    from_id: Annotated[int | None, Field(title="From Id")]
    id: Annotated[int, Field(title="Id")]
    note: Annotated[str, Field(title="Note")]
    to_id: Annotated[int | None, Field(title="To Id")]


class ChangePasswordRequest(BaseModel):
    new_password: Annotated[str, Field(max_length=1024, min_length=1, title="New Password")]
    old_password: Annotated[str, Field(max_length=1024, min_length=1, title="Old Password")]


class MaxCompletionTokens(RootModel[int]):
    root: Annotated[int, Field(ge=1, title="Max Completion Tokens")]


class MaxTokens(RootModel[int]):
    root: Annotated[int, Field(ge=1, title="Max Tokens")]


class N(RootModel[int]):
    root: Annotated[int, Field(description="only 1 is supported", ge=1, le=1, title="N")]


class Temperature(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=2.0, title="Temperature")]


class TopP(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=1.0, title="Top P")]


class User(RootModel[str]):
    root: Annotated[str, Field(max_length=256, title="User")]


class SessionId(RootModel[str]):
    root: Annotated[str, Field(pattern="^[A-Za-z0-9_.:-]{1,128}$", title="Session Id")]


class ChatRequest(BaseModel):
    image: Annotated[
        str | None,
        Field(
            description="An attached image as base64 (or a data: URL): PNG, JPEG or WebP.",
            title="Image",
        ),
    ] = None
    message: Annotated[str, Field(title="Message")]
    session_id: Annotated[SessionId | None, Field(title="Session Id")] = None


class Choice(BaseModel):
    finish_reason: Annotated[str, Field(title="Finish Reason")]
    index: Annotated[int | None, Field(title="Index")] = 0
    logprobs: Annotated[None, Field(title="Logprobs")] = None
    message: AssistantMessage


class CollectionCreate(BaseModel):
    description: Annotated[str | None, Field(max_length=2000, title="Description")] = ""
    name: Annotated[
        str,
        Field(
            description="letters, digits, . / _ @ + - space",
            pattern="^[\\w][\\w./@+ -]{0,99}$",
            title="Name",
        ),
    ]
    shared: Annotated[
        bool | None, Field(description="visible to every user (admins only)", title="Shared")
    ] = False


class CollectionOut(BaseModel):
    chunks: Annotated[int, Field(title="Chunks")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    description: Annotated[str, Field(title="Description")]
    documents: Annotated[int, Field(title="Documents")]
    id: Annotated[int, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    shared: Annotated[bool, Field(title="Shared")]


class CompletionUsage(BaseModel):
    completion_tokens: Annotated[int, Field(title="Completion Tokens")]
    prompt_tokens: Annotated[int, Field(title="Prompt Tokens")]
    total_tokens: Annotated[int, Field(title="Total Tokens")]


class ContentPart(BaseModel):
    text: Annotated[str | None, Field(title="Text")] = None
    type: Annotated[str, Field(title="Type")]


class HeldOutShare(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, lt=1.0, title="Held Out Share")]


class Limit(RootModel[int]):
    root: Annotated[
        int, Field(description="newest turns first; default max_records", ge=1, title="Limit")
    ]


class MinConfidence(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=1.0, title="Min Confidence")]


class MinRecords(RootModel[int]):
    root: Annotated[int, Field(ge=1, title="Min Records")]


class DatasetPolicy(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    held_out_share: Annotated[HeldOutShare | None, Field(title="Held Out Share")] = None
    include_corrected: Annotated[
        bool | None,
        Field(description="the correction becomes the target", title="Include Corrected"),
    ] = True
    include_rated_up: Annotated[bool | None, Field(title="Include Rated Up")] = True
    include_unrated: Annotated[
        bool | None,
        Field(
            description="unrated answers whose confidence reaches min_confidence",
            title="Include Unrated",
        ),
    ] = None
    limit: Annotated[
        Limit | None, Field(description="newest turns first; default max_records", title="Limit")
    ] = None
    min_confidence: Annotated[MinConfidence | None, Field(title="Min Confidence")] = None
    min_records: Annotated[MinRecords | None, Field(title="Min Records")] = None
    since: Annotated[
        AwareDatetime | None, Field(description="only turns from this time on", title="Since")
    ] = None


class Decision(BaseModel):
    note: Annotated[str | None, Field(max_length=2000, title="Note")] = ""


class DecisionNote(BaseModel):
    note: Annotated[str | None, Field(max_length=500, title="Note")] = ""


class DecisionOut(BaseModel):
    action: Annotated[str, Field(title="Action")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    decided_at: Annotated[AwareDatetime | None, Field(title="Decided At")]
    decided_by: Annotated[str | None, Field(title="Decided By")]
    id: Annotated[int, Field(title="Id")]
    inputs: Annotated[dict[str, Any], Field(title="Inputs")]
    outcome: Annotated[str, Field(title="Outcome")]
    rule: Annotated[str, Field(title="Rule")]
    status: Annotated[
        Literal["taken", "awaiting_approval", "approved", "rejected", "failed", "refused"],
        Field(title="Status"),
    ]


class DecisionPage(BaseModel):
    items: Annotated[list[DecisionOut], Field(title="Items")]
    next_before: Annotated[int | None, Field(title="Next Before")] = None


class DiagnoseOut(BaseModel):
    decisions: Annotated[list[DecisionOut], Field(title="Decisions")]
    diagnostics: Annotated[dict[str, Any], Field(title="Diagnostics")]


class DocumentOut(BaseModel):
    chunks: Annotated[int, Field(title="Chunks")]
    collection: Annotated[str, Field(title="Collection")]
    collection_id: Annotated[int, Field(title="Collection Id")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    format: Annotated[str, Field(title="Format")]
    id: Annotated[int, Field(title="Id")]
    pages: Annotated[int, Field(title="Pages")]
    path: Annotated[str, Field(title="Path")]
    sha256: Annotated[str, Field(title="Sha256")]
    shared: Annotated[bool, Field(title="Shared")]
    size_bytes: Annotated[int, Field(title="Size Bytes")]
    title: Annotated[str, Field(title="Title")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    url: Annotated[str | None, Field(title="Url")]


class DocumentPage(BaseModel):
    items: Annotated[list[DocumentOut], Field(title="Items")]
    next_cursor: Annotated[
        int | None, Field(description="pass as ?cursor= for the next page", title="Next Cursor")
    ]


class ErrorBody(BaseModel):
    code: Annotated[str, Field(examples=["not_found"], title="Code")]
    detail: Annotated[str, Field(title="Detail")]


class ErrorDetail(BaseModel):
    code: Annotated[str | None, Field(title="Code")] = None
    message: Annotated[str, Field(title="Message")]
    param: Annotated[str | None, Field(title="Param")] = None
    type: Annotated[str, Field(title="Type")]


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ExportOut(BaseModel):
    account: AccountExport
    api_keys: Annotated[list[dict[str, Any]], Field(title="Api Keys")]
    collections: Annotated[list[dict[str, Any]] | None, Field(title="Collections")] = []
    document_chunks: Annotated[list[dict[str, Any]] | None, Field(title="Document Chunks")] = []
    documents: Annotated[list[dict[str, Any]] | None, Field(title="Documents")] = []
    exported_at: Annotated[AwareDatetime, Field(title="Exported At")]
    feedback: Annotated[list[dict[str, Any]] | None, Field(title="Feedback")] = []
    format: Annotated[str | None, Field(title="Format")] = "mongars-export/1"
    knowledge_gaps: Annotated[list[dict[str, Any]] | None, Field(title="Knowledge Gaps")] = []
    memories: Annotated[list[dict[str, Any]], Field(title="Memories")]
    persona: Annotated[dict[str, Any] | None, Field(title="Persona")]
    threads: Annotated[list[dict[str, Any]], Field(title="Threads")]
    turns: Annotated[list[dict[str, Any]], Field(title="Turns")]


class FactOut(BaseModel):
    id: Annotated[int, Field(title="Id")]
    invalid_at: Annotated[AwareDatetime | None, Field(title="Invalid At")]
    source_ids: Annotated[list[int], Field(title="Source Ids")]
    subject: Annotated[str | None, Field(title="Subject")]
    text: Annotated[str, Field(title="Text")]
    valid_from: Annotated[AwareDatetime | None, Field(title="Valid From")]


class FailureOut(BaseModel):
    error: Annotated[str | None, Field(title="Error")]
    memory_id: Annotated[int, Field(title="Memory Id")]
    turn_id: Annotated[int | None, Field(title="Turn Id")]


class FeedbackBrief(BaseModel):
    correction: Annotated[str | None, Field(title="Correction")]
    rating: Annotated[Literal["up", "down"] | None, Field(title="Rating")]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    comment: Annotated[
        str | None,
        Field(description="Why, in a few words (at most 2000 characters).", title="Comment"),
    ] = None
    correction: Annotated[
        str | None,
        Field(
            description="A better answer, in your words (at most the chat message limit, MONGARS_CHAT__MAX_MESSAGE_CHARS).",
            title="Correction",
        ),
    ] = None
    rating: Annotated[
        Literal["up", "down"] | None,
        Field(description="up, down, or null (no rating).", title="Rating"),
    ] = None


class FeedbackOut(BaseModel):
    comment: Annotated[str | None, Field(title="Comment")]
    correction: Annotated[str | None, Field(title="Correction")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    rating: Annotated[Literal["up", "down"] | None, Field(title="Rating")]
    turn_id: Annotated[int, Field(title="Turn Id")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class ForgetAllOut(BaseModel):
    deleted: Annotated[int, Field(title="Deleted")]


class GapOut(BaseModel):
    best_score: Annotated[float, Field(title="Best Score")]
    coverage: Annotated[float, Field(title="Coverage")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    error: Annotated[str | None, Field(title="Error")]
    id: Annotated[int, Field(title="Id")]
    missing_terms: Annotated[list[str], Field(title="Missing Terms")]
    question: Annotated[str, Field(title="Question")]
    sources: Annotated[list[dict[str, Any]], Field(title="Sources")]
    status: Annotated[str, Field(title="Status")]
    user_id: Annotated[int, Field(title="User Id")]


class GapPage(BaseModel):
    items: Annotated[list[GapOut], Field(title="Items")]
    next_cursor: Annotated[int | None, Field(title="Next Cursor")]


class GateReason(BaseModel):
    code: Annotated[str, Field(title="Code")]
    detail: Annotated[str, Field(title="Detail")]
    figure: Annotated[Any | None, Field(title="Figure")] = None
    limit: Annotated[Any | None, Field(title="Limit")] = None


class HistoryItem(BaseModel):
    adapter_version: Annotated[
        int | None,
        Field(
            description="The adapter version that produced the answer (docs/adapters.md); null: the base model.",
            title="Adapter Version",
        ),
    ] = None
    feedback: Annotated[
        FeedbackBrief | None,
        Field(description="Your rating and suggested answer, if you gave any."),
    ] = None
    query: Annotated[str, Field(title="Query")]
    response: Annotated[str, Field(title="Response")]
    session_id: Annotated[str, Field(title="Session Id")]
    timestamp: Annotated[str, Field(title="Timestamp")]
    turn_id: Annotated[
        int, Field(description="The turn (rate it at /turns/{turn_id}/feedback).", title="Turn Id")
    ]
    user_id: Annotated[str, Field(title="User Id")]


class IngestOut(BaseModel):
    document: DocumentOut
    status: Annotated[Literal["created", "updated", "unchanged"], Field(title="Status")]


class TtlS(RootModel[float]):
    root: Annotated[float, Field(gt=0.0, le=604800.0, title="Ttl S")]


class InviteCreate(BaseModel):
    same_owner: Annotated[bool | None, Field(title="Same Owner")] = False
    ttl_s: Annotated[TtlS | None, Field(title="Ttl S")] = None


class InviteOut(BaseModel):
    expires_at: Annotated[AwareDatetime, Field(title="Expires At")]
    invite: Annotated[str, Field(title="Invite")]


class JobRunOut(BaseModel):
    cpu_s: Annotated[float, Field(title="Cpu S")]
    duration_s: Annotated[float | None, Field(title="Duration S")]
    energy_method: Annotated[Literal["rapl", "estimate"], Field(title="Energy Method")]
    energy_wh: Annotated[float, Field(title="Energy Wh")]
    error: Annotated[str | None, Field(title="Error")]
    finished_at: Annotated[AwareDatetime | None, Field(title="Finished At")]
    id: Annotated[str, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    progress: Annotated[str, Field(description="the last step's own words", title="Progress")]
    result: Annotated[
        dict[str, Any],
        Field(description="what the run did: counts added over its steps", title="Result"),
    ]
    started_at: Annotated[AwareDatetime, Field(title="Started At")]
    state: Annotated[
        Literal[
            "queued",
            "running",
            "cancelling",
            "succeeded",
            "failed",
            "cancelled",
            "paused",
            "yielded",
        ],
        Field(title="State"),
    ]
    steps: Annotated[int, Field(title="Steps")]
    trigger: Annotated[Literal["schedule", "idle", "manual"], Field(title="Trigger")]


class JobRunPage(BaseModel):
    items: Annotated[list[JobRunOut], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class JoinRequest(BaseModel):
    invite: Annotated[str, Field(max_length=8192, min_length=8, title="Invite")]
    same_owner: Annotated[bool | None, Field(title="Same Owner")] = False


class MeasuredLanguage(BaseModel):
    observations: Annotated[
        int, Field(description="Messages whose language could be detected.", title="Observations")
    ]
    share: Annotated[
        float, Field(description="Share of recent messages in this language (EMA).", title="Share")
    ]
    value: Annotated[str, Field(title="Value")]


class MeasuredValue(BaseModel):
    observations: Annotated[
        int, Field(description="Messages this value was measured on.", title="Observations")
    ]
    value: Annotated[float, Field(title="Value")]


class MemoryCreate(BaseModel):
    text: Annotated[
        str,
        Field(
            description="What to remember (a note), 1-8000 characters.",
            max_length=8000,
            title="Text",
        ),
    ]


class MemoryEdit(BaseModel):
    text: Annotated[
        str, Field(description="The new text, 1-8000 characters.", max_length=8000, title="Text")
    ]


class MemoryHitOut(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[int, Field(title="Id")]
    kind: Annotated[str, Field(title="Kind")]
    score: Annotated[
        float,
        Field(description="Fused relevance (higher is better); for ordering only.", title="Score"),
    ]
    text: Annotated[str, Field(title="Text")]
    thread_id: Annotated[str | None, Field(title="Thread Id")]
    turn_id: Annotated[int | None, Field(title="Turn Id")]


class MemoryOut(BaseModel):
    created_at: Annotated[
        AwareDatetime, Field(description="When the remembered thing happened.", title="Created At")
    ]
    id: Annotated[int, Field(title="Id")]
    indexed: Annotated[
        bool,
        Field(
            description="Embedded for semantic recall (full-text works at once).", title="Indexed"
        ),
    ]
    invalid_at: Annotated[AwareDatetime | None, Field(title="Invalid At")]
    kind: Annotated[str, Field(description="turn | note | fact | summary", title="Kind")]
    source_ids: Annotated[
        list[int],
        Field(description="Memories a summary or merge was made from.", title="Source Ids"),
    ]
    subject: Annotated[str | None, Field(title="Subject")]
    text: Annotated[str, Field(title="Text")]
    thread_id: Annotated[str | None, Field(title="Thread Id")]
    turn_id: Annotated[int | None, Field(title="Turn Id")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    valid_from: Annotated[AwareDatetime | None, Field(title="Valid From")]


class MemoryPage(BaseModel):
    items: Annotated[list[MemoryOut], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class Message(BaseModel):
    content: Annotated[str | list[ContentPart] | None, Field(title="Content")] = None
    name: Annotated[str | None, Field(title="Name")] = None
    role: Annotated[str, Field(max_length=32, title="Role")]


class MessageOut(BaseModel):
    adapter_version: Annotated[
        int | None,
        Field(
            description="The adapter version that answered; null: the base model.",
            title="Adapter Version",
        ),
    ] = None
    citations: Annotated[list[dict[str, Any]] | None, Field(title="Citations")] = []
    completion_tokens: Annotated[int, Field(title="Completion Tokens")]
    confidence: Annotated[float | None, Field(title="Confidence")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    feedback: Annotated[
        FeedbackBrief | None,
        Field(description="Your rating and suggested answer, if you gave any."),
    ] = None
    model: Annotated[str, Field(title="Model")]
    prompt_tokens: Annotated[int, Field(title="Prompt Tokens")]
    query: Annotated[str, Field(title="Query")]
    response: Annotated[str, Field(title="Response")]
    status: Annotated[str, Field(title="Status")]
    turn_id: Annotated[int, Field(title="Turn Id")]


class MessagePage(BaseModel):
    items: Annotated[list[MessageOut], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class Model(BaseModel):
    created: Annotated[int, Field(title="Created")]
    id: Annotated[str, Field(title="Id")]
    object: Annotated[Literal["model"], Field(title="Object")] = "model"
    owned_by: Annotated[str | None, Field(title="Owned By")] = "mongars"


class ModelDefinition(BaseModel):
    auto_download: Annotated[
        bool,
        Field(description="provisioning can fetch or assemble its files", title="Auto Download"),
    ]
    description: Annotated[str | None, Field(title="Description")] = None
    name: Annotated[
        str,
        Field(description="the model id (for llamacpp: the packaged model or file)", title="Name"),
    ]
    parameters: Annotated[dict[str, Any], Field(title="Parameters")]
    provider: Annotated[
        str, Field(description="llamacpp | ollama | openai | ray | transformers", title="Provider")
    ]
    role: Annotated[str, Field(title="Role")]


class ModelList(BaseModel):
    data: Annotated[list[Model], Field(title="Data")]
    object: Annotated[Literal["list"], Field(title="Object")] = "list"


class ModelProfile(BaseModel):
    models: Annotated[dict[str, ModelDefinition], Field(title="Models")]
    name: Annotated[str, Field(title="Name")]


class NodeOut(BaseModel):
    encryption_key: Annotated[str, Field(title="Encryption Key")]
    kid: Annotated[str, Field(title="Kid")]
    node_id: Annotated[str, Field(title="Node Id")]
    peers_enabled: Annotated[bool, Field(title="Peers Enabled")]
    signing_key: Annotated[str, Field(title="Signing Key")]
    url: Annotated[str, Field(title="Url")]


class Passage(BaseModel):
    chunk_id: Annotated[int, Field(title="Chunk Id")]
    collection: Annotated[str, Field(title="Collection")]
    dense: Annotated[float, Field(description="cosine similarity to the query", title="Dense")]
    document_id: Annotated[int, Field(title="Document Id")]
    lexical: Annotated[
        float, Field(description="full-text relevance, 1 = best of this search", title="Lexical")
    ]
    page: Annotated[int | None, Field(title="Page")]
    path: Annotated[str, Field(title="Path")]
    score: Annotated[float, Field(title="Score")]
    section: Annotated[str, Field(title="Section")]
    text: Annotated[str, Field(title="Text")]
    title: Annotated[str, Field(title="Title")]
    url: Annotated[str | None, Field(title="Url")]


class PeerDecision(BaseModel):
    note: Annotated[str | None, Field(max_length=1000, title="Note")] = ""


class PeerLoadSnapshot(BaseModel):
    active_workers: Annotated[int | None, Field(title="Active Workers")] = 0
    concurrency: Annotated[int | None, Field(title="Concurrency")] = 0
    load_factor: Annotated[float | None, Field(title="Load Factor")] = 0.0
    queue_depth: Annotated[int | None, Field(title="Queue Depth")] = 0
    scheduler_id: Annotated[str | None, Field(title="Scheduler Id")] = None


class PeerMessageOut(BaseModel):
    id: Annotated[int, Field(title="Id")]
    node_id: Annotated[str, Field(title="Node Id")]
    payload: Annotated[dict[str, Any], Field(title="Payload")]
    received_at: Annotated[AwareDatetime, Field(title="Received At")]


class PeerOut(BaseModel):
    banned_until: Annotated[AwareDatetime | None, Field(title="Banned Until")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    failures: Annotated[int, Field(title="Failures")]
    healthy: Annotated[bool, Field(title="Healthy")]
    kid: Annotated[str, Field(title="Kid")]
    last_seen_at: Annotated[AwareDatetime | None, Field(title="Last Seen At")]
    latency_ms: Annotated[float | None, Field(title="Latency Ms")]
    load: Annotated[float | None, Field(title="Load")]
    node_id: Annotated[str, Field(title="Node Id")]
    note: Annotated[str, Field(title="Note")]
    paired_at: Annotated[AwareDatetime | None, Field(title="Paired At")]
    reputation: Annotated[float, Field(title="Reputation")]
    same_owner: Annotated[bool, Field(title="Same Owner")]
    state: Annotated[str, Field(title="State")]
    telemetry: Annotated[dict[str, Any], Field(title="Telemetry")]
    tls_fingerprint: Annotated[str | None, Field(title="Tls Fingerprint")]
    url: Annotated[str, Field(title="Url")]
    work_sent: Annotated[dict[str, int] | None, Field(title="Work Sent")] = None


class PeerRegistration(BaseModel):
    url: Annotated[str, Field(max_length=500, min_length=8, title="Url")]


class PeerState(BaseModel):
    node_id: Annotated[str, Field(title="Node Id")]
    state: Annotated[str, Field(title="State")]


class Persona(RootModel[str]):
    root: Annotated[
        str,
        Field(
            description="Your own instructions for the assistant, added to its system prompt.",
            max_length=2000,
            title="Persona",
        ),
    ]


class Preferences(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    emoji: Annotated[
        bool | None, Field(description="Whether answers may use emoji.", title="Emoji")
    ] = None
    language: Annotated[
        str | None,
        Field(description="ISO 639-1 code the answers should be in, e.g. 'fr'.", title="Language"),
    ] = None
    persona: Annotated[
        Persona | None,
        Field(
            description="Your own instructions for the assistant, added to its system prompt.",
            title="Persona",
        ),
    ] = None
    tone: Annotated[
        Literal["formal", "neutral", "casual", "friendly"] | None, Field(title="Tone")
    ] = None
    verbosity: Annotated[
        Literal["terse", "normal", "detailed"] | None, Field(title="Verbosity")
    ] = None


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    allow_training: Annotated[
        bool | None,
        Field(
            description="May your conversations (curated and scrubbed of personal data) train the model? null: the server's default. Left out: unchanged.",
            title="Allow Training",
        ),
    ] = None
    emoji: Annotated[
        bool | None, Field(description="Whether answers may use emoji.", title="Emoji")
    ] = None
    language: Annotated[
        str | None,
        Field(description="ISO 639-1 code the answers should be in, e.g. 'fr'.", title="Language"),
    ] = None
    persona: Annotated[
        Persona | None,
        Field(
            description="Your own instructions for the assistant, added to its system prompt.",
            title="Persona",
        ),
    ] = None
    tone: Annotated[
        Literal["formal", "neutral", "casual", "friendly"] | None, Field(title="Tone")
    ] = None
    verbosity: Annotated[
        Literal["terse", "normal", "detailed"] | None, Field(title="Verbosity")
    ] = None


class Roles(RootModel[list[str]]):
    root: Annotated[
        list[str],
        Field(description="null: every role this server uses", max_length=16, title="Roles"),
    ]


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    force: Annotated[
        bool | None, Field(description="prepare or pull again what is already there", title="Force")
    ] = False
    roles: Annotated[
        Roles | None, Field(description="null: every role this server uses", title="Roles")
    ] = None


class ProvisionStatus(BaseModel):
    action: Annotated[
        Literal["exists", "installed", "updated", "skipped", "unavailable", "error"],
        Field(title="Action"),
    ]
    detail: Annotated[str, Field(title="Detail")]
    name: Annotated[str, Field(title="Name")]
    provider: Annotated[str, Field(title="Provider")]
    role: Annotated[str, Field(title="Role")]


class Prune(BaseModel):
    keep: Annotated[
        int | None, Field(description="newest retired versions kept", ge=0, le=1000, title="Keep")
    ] = 5


class Pruned(BaseModel):
    pruned: Annotated[list[int], Field(title="Pruned")]


class Sha256(RootModel[str]):
    root: Annotated[str, Field(pattern="^[0-9a-f]{64}$", title="Sha256")]


class PullRequest(BaseModel):
    sha256: Annotated[Sha256 | None, Field(title="Sha256")] = None


class MaxResults(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=50, title="Max Results")]


class RagContextRequest(BaseModel):
    max_results: Annotated[MaxResults | None, Field(title="Max Results")] = None
    query: Annotated[str, Field(max_length=4000, min_length=1, title="Query")]
    repositories: Annotated[list[str] | None, Field(title="Repositories")] = None


class RagReference(BaseModel):
    file_path: Annotated[str, Field(title="File Path")]
    repository: Annotated[str, Field(title="Repository")]
    score: Annotated[float | None, Field(title="Score")] = None
    summary: Annotated[str, Field(title="Summary")]
    url: Annotated[str | None, Field(title="Url")] = None


class RegisterRequest(BaseModel):
    is_admin: Annotated[bool | None, Field(title="Is Admin")] = False
    password: Annotated[str, Field(max_length=1024, min_length=1, title="Password")]
    username: Annotated[str, Field(max_length=64, min_length=1, title="Username")]


class RegisterResponse(BaseModel):
    is_admin: Annotated[bool, Field(title="Is Admin")]
    status: Annotated[str | None, Field(title="Status")] = "registered"


class RegisterRun(BaseModel):
    run_id: Annotated[str, Field(max_length=32, min_length=1, title="Run Id")]


class RegistrationOut(BaseModel):
    count: Annotated[int, Field(title="Count")]
    status: Annotated[str, Field(title="Status")]


class ResetPasswordRequest(BaseModel):
    password: Annotated[str, Field(max_length=1024, min_length=1, title="Password")]


class MaxSteps(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=100000, title="Max Steps")]


class RunCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    dataset_id: Annotated[str, Field(max_length=32, min_length=1, title="Dataset Id")]
    max_steps: Annotated[MaxSteps | None, Field(title="Max Steps")] = None
    objective: Annotated[Literal["sft", "mntp"] | None, Field(title="Objective")] = "sft"


class RunOut(BaseModel):
    adapter_sha256: Annotated[str | None, Field(title="Adapter Sha256")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    dataset_flagged: Annotated[bool | None, Field(title="Dataset Flagged")] = False
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    dataset_sha256: Annotated[str, Field(title="Dataset Sha256")]
    error: Annotated[str | None, Field(title="Error")]
    eta_s: Annotated[float | None, Field(title="Eta S")]
    finished_at: Annotated[AwareDatetime | None, Field(title="Finished At")]
    id: Annotated[str, Field(title="Id")]
    loss: Annotated[float | None, Field(title="Loss")]
    metrics: Annotated[dict[str, Any], Field(title="Metrics")]
    mlflow_run_id: Annotated[str | None, Field(title="Mlflow Run Id")]
    objective: Annotated[str, Field(title="Objective")]
    params: Annotated[dict[str, Any], Field(title="Params")]
    perplexity_adapter: Annotated[float | None, Field(title="Perplexity Adapter")] = None
    perplexity_base: Annotated[float | None, Field(title="Perplexity Base")] = None
    progress: Annotated[float, Field(description="0..1", title="Progress")]
    started_at: Annotated[AwareDatetime | None, Field(title="Started At")]
    status: Annotated[
        Literal["queued", "running", "pausing", "paused", "completed", "failed", "cancelled"],
        Field(title="Status"),
    ]
    step: Annotated[int, Field(title="Step")]
    total_steps: Annotated[int, Field(title="Total Steps")]


class RunPage(BaseModel):
    items: Annotated[list[RunOut], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class SearchOut(BaseModel):
    items: Annotated[list[MemoryHitOut], Field(title="Items")]
    query: Annotated[str, Field(title="Query")]


class SearchRequest(BaseModel):
    collections: Annotated[
        list[str] | None, Field(description="default: every visible one", title="Collections")
    ] = None
    k: Annotated[int | None, Field(ge=1, le=50, title="K")] = 5
    query: Annotated[str, Field(max_length=4000, min_length=1, title="Query")]


class SearchResponse(BaseModel):
    passages: Annotated[list[Passage], Field(title="Passages")]
    query: Annotated[str, Field(title="Query")]


class SendMessage(BaseModel):
    payload: Annotated[dict[str, Any], Field(title="Payload")]


class SetupRequest(BaseModel):
    password: Annotated[str, Field(max_length=1024, min_length=1, title="Password")]
    token: Annotated[str, Field(max_length=256, min_length=1, title="Token")]
    username: Annotated[str, Field(max_length=64, min_length=1, title="Username")]


class SetupStatus(BaseModel):
    setup_required: Annotated[bool, Field(title="Setup Required")]


class Skipped(BaseModel):
    adapter: Annotated[str, Field(title="Adapter")]
    reason: Annotated[str, Field(title="Reason")]


class SpeechSegment(BaseModel):
    estimated_duration: Annotated[float, Field(title="Estimated Duration")]
    pause_after: Annotated[float, Field(title="Pause After")]
    text: Annotated[str, Field(title="Text")]


class SpeechTurn(BaseModel):
    average_words_per_second: Annotated[float, Field(title="Average Words Per Second")]
    created_at: Annotated[str, Field(title="Created At")]
    segments: Annotated[list[SpeechSegment], Field(title="Segments")]
    tempo: Annotated[float, Field(title="Tempo")]
    text: Annotated[str, Field(title="Text")]
    turn_id: Annotated[str, Field(title="Turn Id")]


class StatusResponse(BaseModel):
    status: Annotated[str, Field(title="Status")]


class StreamOptions(BaseModel):
    include_usage: Annotated[bool | None, Field(title="Include Usage")] = False


class Adapter(RootModel[str]):
    root: Annotated[str, Field(max_length=64, title="Adapter")]


class Source(RootModel[str]):
    root: Annotated[str, Field(max_length=2048, title="Source")]


class Telemetry(BaseModel):
    accepts: Annotated[list[str] | None, Field(max_length=10, title="Accepts")] = None
    active_workers: Annotated[int | None, Field(ge=0, title="Active Workers")] = 0
    adapter: Annotated[Adapter | None, Field(title="Adapter")] = None
    concurrency: Annotated[int | None, Field(ge=0, title="Concurrency")] = 0
    cpu_pressure: Annotated[float | None, Field(ge=0.0, title="Cpu Pressure")] = 0.0
    energy_wh_24h: Annotated[float | None, Field(ge=0.0, title="Energy Wh 24H")] = 0.0
    load_factor: Annotated[float | None, Field(ge=0.0, title="Load Factor")] = 0.0
    models: Annotated[list[str] | None, Field(max_length=50, title="Models")] = None
    observed_at: Annotated[AwareDatetime | None, Field(title="Observed At")] = None
    queue_depth: Annotated[int | None, Field(ge=0, title="Queue Depth")] = 0
    scheduler_id: Annotated[str | None, Field(title="Scheduler Id")] = None
    source: Annotated[Source | None, Field(title="Source")] = None
    task_failure_rate: Annotated[float | None, Field(ge=0.0, title="Task Failure Rate")] = 0.0
    tasks_failed: Annotated[int | None, Field(ge=0, title="Tasks Failed")] = 0
    tasks_processed: Annotated[int | None, Field(ge=0, title="Tasks Processed")] = 0
    version: Annotated[str | None, Field(max_length=50, title="Version")] = ""
    worker_uptime_seconds: Annotated[float | None, Field(ge=0.0, title="Worker Uptime Seconds")] = (
        0.0
    )


class Title(RootModel[str]):
    root: Annotated[str, Field(max_length=200, title="Title")]


class ThreadCreate(BaseModel):
    title: Annotated[Title | None, Field(title="Title")] = None


class ThreadHit(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[str, Field(title="Id")]
    message_count: Annotated[int, Field(title="Message Count")]
    snippet: Annotated[str, Field(title="Snippet")]
    title: Annotated[str, Field(title="Title")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class ThreadOut(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[str, Field(title="Id")]
    message_count: Annotated[int, Field(title="Message Count")]
    title: Annotated[str, Field(title="Title")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class ThreadPage(BaseModel):
    items: Annotated[list[ThreadOut], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class ThreadRename(BaseModel):
    title: Annotated[str, Field(max_length=200, title="Title")]


class TicketResponse(BaseModel):
    ticket: Annotated[str, Field(title="Ticket")]
    ttl: Annotated[int, Field(title="Ttl")]


class TokenResponse(BaseModel):
    access_token: Annotated[str, Field(title="Access Token")]
    expires_at: Annotated[str, Field(title="Expires At")]
    token_type: Annotated[str | None, Field(title="Token Type")] = "bearer"


class Usage(BaseModel):
    completion_tokens: Annotated[int, Field(title="Completion Tokens")]
    prompt_tokens: Annotated[int, Field(title="Prompt Tokens")]


class UserList(BaseModel):
    users: Annotated[list[str], Field(title="Users")]


class UserOut(BaseModel):
    id: Annotated[int, Field(title="Id")]
    is_active: Annotated[bool, Field(title="Is Active")]
    is_admin: Annotated[bool, Field(title="Is Admin")]
    username: Annotated[str, Field(title="Username")]


class ValidationProblem(BaseModel):
    loc: Annotated[list[str | int], Field(title="Loc")]
    msg: Annotated[str, Field(title="Msg")]
    type: Annotated[str, Field(title="Type")]


class VersionFigures(BaseModel):
    confidence_ci: Annotated[tuple[float | None, float | None], Field(title="Confidence Ci")]
    confidence_mean: Annotated[float | None, Field(title="Confidence Mean")]
    latency_ms_ci: Annotated[tuple[float | None, float | None], Field(title="Latency Ms Ci")]
    latency_ms_mean: Annotated[float | None, Field(title="Latency Ms Mean")]
    thumbs_down: Annotated[int, Field(title="Thumbs Down")]
    thumbs_down_ci: Annotated[tuple[float, float], Field(title="Thumbs Down Ci")]
    thumbs_down_rate: Annotated[float | None, Field(title="Thumbs Down Rate")]
    thumbs_up: Annotated[int, Field(title="Thumbs Up")]
    turns: Annotated[int, Field(title="Turns")]
    version: Annotated[int | None, Field(title="Version")]


class Violation(BaseModel):
    code: Annotated[
        Literal["pii_remaining", "too_few_records", "consent_withdrawn", "past_retention"],
        Field(title="Code"),
    ]
    detail: Annotated[str, Field(title="Detail")]
    records: Annotated[
        list[int] | None, Field(description="record indexes, when known", title="Records")
    ] = None


class MongarsAdaptersSchemasAdapterOut(BaseModel):
    activated_at: Annotated[AwareDatetime | None, Field(title="Activated At")]
    base_model: Annotated[str, Field(title="Base Model")]
    canary: Annotated[bool | None, Field(title="Canary")] = False
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    dataset_sha256: Annotated[str, Field(title="Dataset Sha256")]
    decided_at: Annotated[AwareDatetime | None, Field(title="Decided At")]
    decided_by: Annotated[str | None, Field(title="Decided By")]
    gate: Annotated[
        list[GateReason], Field(description="why it needs a human (empty: it passed)", title="Gate")
    ]
    id: Annotated[int, Field(title="Id")]
    metrics: Annotated[dict[str, Any], Field(title="Metrics")]
    note: Annotated[str, Field(title="Note")]
    run_id: Annotated[str, Field(title="Run Id")]
    sha256: Annotated[str, Field(title="Sha256")]
    size_bytes: Annotated[int, Field(title="Size Bytes")]
    state: Annotated[
        Literal["candidate", "approved", "rejected", "active", "retired", "pruned"],
        Field(title="State"),
    ]


class MongarsModelsSchemasAdapterOut(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    objective: Annotated[str, Field(title="Objective")]
    perplexity_adapter: Annotated[float | None, Field(title="Perplexity Adapter")] = None
    perplexity_base: Annotated[float | None, Field(title="Perplexity Base")] = None
    run_id: Annotated[str, Field(title="Run Id")]
    sha256: Annotated[str, Field(title="Sha256")]
    state: Annotated[
        Literal["unregistered", "candidate", "approved", "rejected", "active", "retired", "pruned"]
        | None,
        Field(title="State"),
    ] = "unregistered"
    version: Annotated[int | None, Field(description="its adapter version id", title="Version")] = (
        None
    )


class AdapterPage(BaseModel):
    items: Annotated[list[MongarsAdaptersSchemasAdapterOut], Field(title="Items")]
    next_before: Annotated[
        int | None, Field(description="pass as ?before= for the next page", title="Next Before")
    ]


class ChatCompletion(BaseModel):
    choices: Annotated[list[Choice], Field(title="Choices")]
    created: Annotated[int, Field(title="Created")]
    id: Annotated[str, Field(title="Id")]
    model: Annotated[str, Field(title="Model")]
    object: Annotated[Literal["chat.completion"], Field(title="Object")] = "chat.completion"
    system_fingerprint: Annotated[str | None, Field(title="System Fingerprint")] = None
    usage: CompletionUsage


class ChatCompletionRequest(BaseModel):
    max_completion_tokens: Annotated[
        MaxCompletionTokens | None, Field(title="Max Completion Tokens")
    ] = None
    max_tokens: Annotated[MaxTokens | None, Field(title="Max Tokens")] = None
    messages: Annotated[list[Message], Field(min_length=1, title="Messages")]
    model: Annotated[str, Field(max_length=256, min_length=1, title="Model")]
    n: Annotated[N | None, Field(description="only 1 is supported", title="N")] = None
    stream: Annotated[bool | None, Field(title="Stream")] = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[Temperature | None, Field(title="Temperature")] = None
    top_p: Annotated[TopP | None, Field(title="Top P")] = None
    user: Annotated[User | None, Field(title="User")] = None


class ChatResponse(BaseModel):
    adapter_version: Annotated[
        int | None,
        Field(
            description="The adapter version that produced the answer (docs/adapters.md); null: the base model.",
            title="Adapter Version",
        ),
    ] = None
    answered_by: Annotated[
        str | None,
        Field(
            description="The paired node that generated the answer when this node handed the turn over (docs/peers.md); null: this node.",
            title="Answered By",
        ),
    ] = None
    citations: Annotated[
        list[dict[str, Any]] | None,
        Field(
            description="Document passages given to the model, numbered as in its prompt ([n]): n, chunk_id, document_id, collection, path, title, section, page, url, score, excerpt (docs/research.md).",
            title="Citations",
        ),
    ] = None
    confidence: Annotated[
        float | None,
        Field(
            description="Mean probability the model gave its own tokens, in [0, 1]; null when the provider exposes no token probabilities.",
            title="Confidence",
        ),
    ]
    finish_reason: Annotated[str, Field(title="Finish Reason")]
    memory_ids: Annotated[
        list[int] | None,
        Field(description="Ids of the memories recalled into the prompt.", title="Memory Ids"),
    ] = None
    model: Annotated[str, Field(title="Model")]
    processing_time: Annotated[float, Field(title="Processing Time")]
    response: Annotated[str, Field(title="Response")]
    session_id: Annotated[str, Field(title="Session Id")]
    speech_turn: SpeechTurn
    turn_id: Annotated[int, Field(title="Turn Id")]
    usage: Usage


class Comparison(BaseModel):
    active: Annotated[int | None, Field(title="Active")]
    canary: Annotated[int | None, Field(title="Canary")]
    canary_worse_p: Annotated[float | None, Field(title="Canary Worse P")]
    since: Annotated[AwareDatetime, Field(title="Since")]
    versions: Annotated[list[VersionFigures], Field(title="Versions")]


class DatasetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    policy: Annotated[DatasetPolicy | None, Field(validate_default=True)] = {
        "include_corrected": True,
        "include_rated_up": True,
    }


class DatasetOut(BaseModel):
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    flagged: Annotated[bool | None, Field(title="Flagged")] = False
    forgotten_records: Annotated[int | None, Field(title="Forgotten Records")] = 0
    held_out: Annotated[int, Field(title="Held Out")]
    id: Annotated[str, Field(title="Id")]
    policy: Annotated[dict[str, Any], Field(title="Policy")]
    records: Annotated[int, Field(title="Records")]
    scrubber_version: Annotated[str, Field(title="Scrubber Version")]
    sha256: Annotated[str, Field(title="Sha256")]
    status: Annotated[Literal["approved", "quarantined"], Field(title="Status")]
    violations: Annotated[list[Violation], Field(title="Violations")]


class DatasetPage(BaseModel):
    items: Annotated[list[DatasetOut], Field(title="Items")]
    next_cursor: Annotated[
        str | None, Field(description="pass as ?cursor= for the next page", title="Next Cursor")
    ]


class InferredStyle(BaseModel):
    confidence: Annotated[
        float,
        Field(description="n / (n + min_observations); values apply from 0.5.", title="Confidence"),
    ]
    emoji_rate: MeasuredValue | None = None
    exclamation_rate: MeasuredValue | None = None
    formality: Annotated[MeasuredValue | None, Field(description="0 casual .. 1 formal")] = None
    language: MeasuredLanguage | None = None
    messages_observed: Annotated[int, Field(title="Messages Observed")]
    question_rate: MeasuredValue | None = None
    sentence_length: MeasuredValue | None = None
    technical_share: MeasuredValue | None = None
    words_per_message: MeasuredValue | None = None


class JobOut(BaseModel):
    description: Annotated[str, Field(title="Description")]
    idle_only: Annotated[bool, Field(title="Idle Only")]
    last_run: JobRunOut | None
    name: Annotated[str, Field(title="Name")]
    next_run: Annotated[
        AwareDatetime | None,
        Field(description="next cron time; null for idle-only jobs", title="Next Run"),
    ]
    schedule: Annotated[
        str | None, Field(description="cron; null: the idle cycle or by hand", title="Schedule")
    ]
    state: Annotated[Literal["idle", "running", "paused", "disabled"], Field(title="State")]


class ModelsOut(BaseModel):
    active_profile: Annotated[str, Field(title="Active Profile")]
    adapters: Annotated[list[MongarsModelsSchemasAdapterOut], Field(title="Adapters")]
    adapters_loadable: Annotated[
        bool,
        Field(
            description="whether the chat provider can answer with this server's adapters",
            title="Adapters Loadable",
        ),
    ]
    adapters_note: Annotated[str, Field(title="Adapters Note")]
    available_profiles: Annotated[list[str], Field(title="Available Profiles")]
    profile: ModelProfile


class PeerTelemetryEnvelope(BaseModel):
    telemetry: Annotated[list[Telemetry] | None, Field(title="Telemetry")] = None


class PointerOut(BaseModel):
    active: MongarsAdaptersSchemasAdapterOut | None
    canary: MongarsAdaptersSchemasAdapterOut | None
    canary_share: Annotated[float, Field(title="Canary Share")]
    generation: Annotated[int, Field(title="Generation")]
    provider_loads_adapters: Annotated[bool, Field(title="Provider Loads Adapters")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class ProfileOut(BaseModel):
    allow_training: Annotated[
        bool | None,
        Field(
            description="Your choice on training: true, false, or null (the server's default).",
            title="Allow Training",
        ),
    ] = None
    allow_training_effective: Annotated[
        bool | None,
        Field(
            description="Whether your conversations may train the model: your choice, or the server's default (MONGARS_TRAINING__DEFAULT_CONSENT) when you made none.",
            title="Allow Training Effective",
        ),
    ] = False
    explicit: Preferences
    inferred: InferredStyle
    steering: Annotated[
        dict[str, Any],
        Field(
            description="What the next turn would apply: directives and budgets, with their sources.",
            title="Steering",
        ),
    ]
    updated_at: Annotated[str | None, Field(title="Updated At")] = None


class ProvisionReport(BaseModel):
    statuses: Annotated[list[ProvisionStatus], Field(title="Statuses")]


class PullOut(BaseModel):
    installed: Annotated[list[MongarsAdaptersSchemasAdapterOut], Field(title="Installed")]
    skipped: Annotated[list[Skipped], Field(title="Skipped")]


class RagContextResponse(BaseModel):
    enabled: Annotated[bool, Field(title="Enabled")]
    focus_areas: Annotated[list[str], Field(title="Focus Areas")]
    references: Annotated[list[RagReference], Field(title="References")]


class SearchPage(BaseModel):
    items: Annotated[list[ThreadHit], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class ValidationErrorBody(BaseModel):
    code: Annotated[str, Field(examples=["invalid_input"], title="Code")]
    detail: Annotated[str, Field(title="Detail")]
    errors: Annotated[list[ValidationProblem] | None, Field(title="Errors")] = None


class JobList(BaseModel):
    idle: Annotated[bool, Field(description="whether the idle gate is open now", title="Idle")]
    idle_reason: Annotated[str, Field(title="Idle Reason")]
    items: Annotated[list[JobOut], Field(title="Items")]
    leader: Annotated[bool, Field(description="whether this process runs the jobs", title="Leader")]
