"""AMI messages and their framing, in both directions (client and the simulator's server).

An AMI message is a block of ``Key: Value`` lines ended by an empty line (``\\r\\n\\r\\n``).
Framing happens on bytes, before any decoding; a message is decoded once, whole. Header
order and repeated headers (``Output:``, ``Variable:``, ``ChanVariable``) are kept.

Parsing is lazy past the first line: the framer reads the message kind (``Event``,
``Response`` or ``Action``) and its value off the first line, which is all a dispatcher needs;
the other headers are split on first access. This keeps the hot path (tens of thousands of
events per second, most of them ignored) cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from pbx._exceptions import LocalProtocolError, RemoteProtocolError

CRLF = "\r\n"
TERMINATOR = b"\r\n\r\n"
CRLF_CRLF = "\r\n\r\n"
_KINDS = frozenset(("Event", "Response", "Action"))
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20

Pair = tuple[str, str]


class AmiMessage:
    """One AMI message: ordered ``(name, value)`` pairs with case-insensitive lookup."""

    __slots__ = ("_index", "_pairs", "_text", "kind", "name")

    def __init__(self, text: str, kind: str = "", name: str = "") -> None:
        self._text = text
        self._pairs: list[Pair] | None = None
        self._index: dict[str, str] | None = None
        #: "Event", "Response", "Action" (the first header) or "" when the first line is not one
        self.kind = kind
        #: the first header's value: the event name, response status or action name
        self.name = name

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair]) -> AmiMessage:
        msg = cls(CRLF.join(f"{k}: {v}" for k, v in pairs))
        msg._pairs = list(pairs)
        if pairs and pairs[0][0] in ("Event", "Response", "Action"):
            msg.kind, msg.name = pairs[0]
        return msg

    @property
    def pairs(self) -> list[Pair]:
        if self._pairs is None:
            self._pairs = _split_headers(self._text)
        return self._pairs

    def _lookup(self) -> dict[str, str]:
        if self._index is None:
            index: dict[str, str] = {}
            for k, v in self.pairs:
                index.setdefault(k.lower(), v)  # the first occurrence, as astman_get_header
            self._index = index
        return self._index

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lookup().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        value = self._lookup().get(name.lower())
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.pairs if k.lower() == lname]

    @property
    def event(self) -> str | None:
        return self.name if self.kind == "Event" else None

    @property
    def response(self) -> str | None:
        return self.name if self.kind == "Response" else None

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def text(self) -> str:
        return self._text

    def as_dict(self) -> dict[str, str]:
        """Single-valued view (first occurrence wins)."""
        return dict(self._lookup())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AmiMessage) and self.pairs == other.pairs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AmiMessage({self.kind}: {self.name}, {len(self.pairs)} headers)"


def _split_headers(text: str) -> list[Pair]:
    pairs: list[Pair] = []
    for line in text.split(CRLF):
        if not line:
            continue
        name, sep, value = line.partition(": ")
        if not sep:
            # "Key:" with nothing after it (an empty value without the space) or a bare line.
            name, sep, value = line.partition(":")
            if not sep:
                name, value = line, ""
        pairs.append((name, value))
    return pairs


def _first_header(text: str) -> tuple[str, str]:
    end = text.find(CRLF)
    first = text if end < 0 else text[:end]
    if first.startswith("Event: "):
        return "Event", first[7:]
    if first.startswith("Response: "):
        return "Response", first[10:]
    if first.startswith("Action: "):
        return "Action", first[8:]
    name, _, value = first.partition(":")
    if name.lower() in ("event", "response", "action"):
        return name.capitalize(), value.strip()
    return "", ""


class MessageFramer:
    """Bytes in, whole :class:`AmiMessage` objects out; either direction of the protocol."""

    __slots__ = ("_buf", "max_message_bytes")

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._buf = b""
        self.max_message_bytes = max_message_bytes

    def feed(self, data: bytes) -> list[AmiMessage]:
        """Add bytes; return the messages completed by them, in order."""
        buf = self._buf + data if self._buf else data
        end = buf.rfind(TERMINATOR)
        if end < 0:
            self._check_size(buf)
            self._buf = buf
            return []
        rest = buf[end + 4 :]
        self._check_size(rest)
        self._buf = rest
        region = buf[:end]
        if len(region) > self.max_message_bytes:
            biggest = max(map(len, region.split(TERMINATOR)))
            if biggest > self.max_message_bytes:
                raise RemoteProtocolError(
                    f"AMI message of {biggest} bytes is over the {self.max_message_bytes}-byte cap"
                )
        # One decode per read, then split: the terminator is ASCII, so this frames exactly as
        # splitting the bytes would, at a fraction of the per-message cost.
        out: list[AmiMessage] = []
        append = out.append
        for text in region.decode("utf-8", "replace").split(CRLF_CRLF):
            if not text or text[0] in "\r\n":
                text = text.lstrip("\r\n")  # stray blank lines between messages
                if not text:
                    continue
            head, _, tail = text.partition(": ")
            if head in _KINDS:
                eol = tail.find(CRLF)
                append(AmiMessage(text, head, tail if eol < 0 else tail[:eol]))
            else:
                kind, name = _first_header(text)
                append(AmiMessage(text, kind, name))
        return out

    def push(self, data: bytes) -> None:
        """Add bytes without framing them yet (before the banner line is taken)."""
        self._buf += data
        if b"\r\n" not in self._buf:  # still no banner line: that alone is capped
            self._check_size(self._buf)

    def take_line(self) -> bytes | None:
        """The banner: a single CRLF-terminated line, not followed by a blank line."""
        i = self._buf.find(b"\r\n")
        if i < 0:
            self._check_size(self._buf)
            return None
        line, self._buf = self._buf[:i], self._buf[i + 2 :]
        return line

    def _check_size(self, pending: bytes) -> None:
        if len(pending) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"{len(pending)} bytes without a message end, over the "
                f"{self.max_message_bytes}-byte cap"
            )

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


def _check_field(name: str, value: str) -> None:
    if not name or any(c in name for c in ":\r\n") or name != name.strip():
        raise LocalProtocolError(f"AMI header name {name!r} is not a valid token")
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(
            f"AMI header {name!r}: value contains CR or LF (header injection refused)"
        )


FieldsLike = Mapping[str, "str | int | Sequence[str]"] | Iterable[tuple[str, "str | int"]]


def iter_fields(fields: FieldsLike) -> Iterator[Pair]:
    """Normalise fields: a mapping (list values repeat the header) or a sequence of pairs."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    for name, value in items:
        if isinstance(value, list | tuple):
            for v in value:
                yield name, str(v)
        else:
            yield name, str(value)


def encode_message(pairs: Iterable[Pair]) -> bytes:
    """Encode header pairs as one AMI message, refusing CR/LF injection."""
    lines = []
    for name, value in pairs:
        _check_field(name, value)
        lines.append(f"{name}: {value}\r\n")
    if not lines:
        raise LocalProtocolError("an AMI message needs at least one header")
    return ("".join(lines) + "\r\n").encode("utf-8")


BANNER = b"Asterisk Call Manager/11.0.0\r\n"
