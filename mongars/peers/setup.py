"""The peer mesh of a running app: keys loaded (or made), telemetry exchange started."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mongars.peers.delegation import Delegator
from mongars.peers.identity import NodeIdentity
from mongars.peers.replication import Replication
from mongars.peers.schemas import Telemetry
from mongars.peers.service import PeerMesh
from mongars.peers.work import WorkServer

if TYPE_CHECKING:
    from mongars.runtime import Runtime


def local_load(runtime: Runtime) -> Telemetry:
    """What this process is doing now. The embedded model answers one request at a
    time, so its concurrency is 1; HTTP providers are counted the same way (a
    conservative figure: they may serve more). The load factor peers see is the
    larger of the generations now and their recent average (``LoadMeter``)."""
    concurrency = 1
    adapter = None
    if runtime.adapters is not None:
        adapter = runtime.adapters.active_sha()
    return Telemetry(
        queue_depth=max(0, runtime.generating - concurrency),
        active_workers=runtime.generating,
        concurrency=concurrency,
        load_factor=max(runtime.generating, runtime.load.average()) / concurrency,
        tasks_processed=runtime.generations_done,
        models=[runtime.llm.model_id],
        adapter=adapter,
    )


async def start_peers(runtime: Runtime) -> PeerMesh:
    identity = await asyncio.to_thread(NodeIdentity.load_or_create, runtime.settings.data_dir)
    mesh = PeerMesh(runtime.sessions, runtime.settings, identity, lambda: local_load(runtime))
    mesh.work = WorkServer(runtime, identity)
    # Whether to hand work away at all depends on this node's load now, not its average.
    mesh.delegator = Delegator(mesh, local_load=lambda: runtime.generating)
    if "embed" in runtime.settings.peers.delegate:  # bulk embedding: memory, documents
        delegator = mesh.delegator
        if runtime.memory is not None:
            memory = runtime.memory.service
            memory.helper = lambda chunks: delegator.embed_chunks(chunks, memory.embedder.embed)
        if runtime.documents is not None:
            docs = runtime.documents.service
            docs.helper = lambda chunks: delegator.embed_chunks(chunks, docs.embedder.embed)
    if runtime.adapters is not None:
        mesh.replication = Replication(mesh, runtime.adapters)
    mesh.start()
    return mesh
