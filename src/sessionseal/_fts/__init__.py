"""The encrypted full-text index's core (issue 23; docs/spec/fts-v1.md); the vault's ``_vault/_fulltext.py`` wires it.

A self-contained private package. It takes keys as bytes and never touches the key store; it
takes stored, sanitized text and never sees a session's input. The caller (the vault, in the
wiring step) owns the manifest, the locks, the atomic writes of the bytes it returns, and the
erasure of a segment by forgetting its key:

- :func:`doc_fields` and :func:`ops_fields`: what of a stored document or an append is indexed;
- :func:`analyze` a session's text into postings; :func:`build_segment` seals them into a new
  segment's bytes; :class:`SegmentReader` opens one;
- :func:`new_delta`, :func:`append_delta`, :func:`read_delta`: the delta log of incremental writes,
  and :func:`rewrite_delta`, the log without erased sessions under a new key;
- :func:`merge` folds segments and delta records (less erased sessions) into postings for a
  new segment; :func:`merge_columns` does the same into segment builders at C speed per
  posting: compaction, and the rewrite that erases a session's words;
- an index build (``reindex``): :func:`analyze_many` tokenizes on worker processes into
  :class:`PackedDoc` s (the same postings, in packed columns), :func:`segments` gathers them
  into segments of about 64 MB of text, inverted (:class:`Inverted`) on the workers too, each
  sealed by its ``build``; :class:`SegmentBuilder` does the same in one process, and
  :func:`overlapped` seals each segment on a thread while the next is gathered;
- :class:`FtsIndex` answers queries (:func:`parse`) with BM25-ranked :class:`Hit` s.
"""

from __future__ import annotations

from ._analyze import PackedDoc, count_lines, pack
from ._build import Inverted, SegmentBuilder
from ._delta import (
    append_delta,
    append_frame,
    delta_frame,
    delta_frames,
    delta_stamps,
    frame_head,
    new_delta,
    open_delta_header,
    read_delta,
    read_delta_current,
    rewrite_delta,
)
from ._fields import REPLACED, doc_fields, ops_fields, replaces_text
from ._format import (
    ALL_FIELDS,
    ASSISTANT,
    TITLE,
    TOOL,
    USER,
    DeltaRecord,
    DocEntry,
    LazyDeltaRecord,
    Posting,
    encode_delta_columns,
)
from ._merge import merge_columns
from ._parallel import SEGMENT_TEXT, analyze_many, overlapped, segments
from ._query import MAX_EXPANSION, FtsIndex, Hit, Query, parse
from ._segment import Analyzed, Doc, HeadCache, SegmentReader, analyze, build_segment, merge
from ._tokens import count_runs, count_terms, words

__all__ = [
    "ALL_FIELDS",
    "ASSISTANT",
    "MAX_EXPANSION",
    "REPLACED",
    "SEGMENT_TEXT",
    "TITLE",
    "TOOL",
    "USER",
    "Analyzed",
    "DeltaRecord",
    "Doc",
    "DocEntry",
    "FtsIndex",
    "HeadCache",
    "Hit",
    "Inverted",
    "LazyDeltaRecord",
    "PackedDoc",
    "Posting",
    "Query",
    "SegmentBuilder",
    "SegmentReader",
    "analyze",
    "analyze_many",
    "append_delta",
    "append_frame",
    "build_segment",
    "count_lines",
    "count_runs",
    "count_terms",
    "delta_frame",
    "delta_frames",
    "delta_stamps",
    "doc_fields",
    "encode_delta_columns",
    "frame_head",
    "merge",
    "merge_columns",
    "new_delta",
    "open_delta_header",
    "ops_fields",
    "overlapped",
    "pack",
    "parse",
    "read_delta",
    "read_delta_current",
    "replaces_text",
    "rewrite_delta",
    "segments",
    "words",
]
