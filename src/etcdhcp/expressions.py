"""Kea client-class `test` expressions: parse once, evaluate against every decoded request.

The language is Kea 2.2's (src/lib/eval: lexer.ll, parser.yy, token.cc), DHCPv4 part,
so a Kea configuration's classes carry over as written. Values are byte strings, as in
Kea; a missing option is the empty string (its `.exists` is false).

Supported, with Kea's spelling (keywords are lower case):
  literals      'text'  0x0a0b  10.0.0.1 / 2001:db8::1 (4 / 16 bytes)  123 (4 bytes, big endian)
  options       option[N|name].hex|.text|.exists   option[82|125].option[M].hex|.text|.exists
                relay4[M].hex|.text|.exists (sub-options of option 82)
  vendor        vendor[*|E].exists  vendor[*|E].option[M].hex|.text|.exists  vendor.enterprise
                vendor-class[*|E].exists  vendor-class[*|E].data[I]  vendor-class.enterprise
  packet        pkt4.mac .hlen .htype .ciaddr .giaddr .yiaddr .siaddr .msgtype .transid
                pkt.iface (from the Context) .src .dst .len
  functions     substring(s, start, length|all)  split(s, delimiters, field)  concat(a, b)
                a + b  ifelse(cond, a, b)  hexstring(s, separator)  addrtotext(s)
                int8totext .. int32totext(s)  uint8totext .. uint32totext(s)
  boolean       a == b  and  or  not  ( )  member('class')
Kea has no `true`/`false` literals (`'' == ''` is its idiom); neither has this module.

Where this differs from Kea, and why:
  * `.text` of an option Kea decodes with a typed definition (integers, addresses,
    records: e.g. option 93) is rendered here as Kea renders an untyped option
    ("type=093, len=002: 00:07"); Kea prints its typed form. String-typed options
    (`string_options`, Kea's standard set by default) and untyped ones match.
  * `.hex` is the option as received (RFC 3396 instances concatenated by the codec);
    Kea re-encodes options it parses (82, 124, 125), which differs only for malformed
    or unordered contents.
  * A malformed option 124 or 125 counts as absent; Kea drops the packet, or the
    options after it.
  * option[43].option[M] is never found: Kea classifies before it unpacks option 43.
  * Errors during evaluation (addrtotext of 3 bytes, a substring start beyond 32 bits)
    make the class not match, as Kea logs and skips the class; never an exception.
    Like Kea 2.2, `and`, `or` and `ifelse` evaluate all their operands, so an error
    in either operand means no match.
  * relay6, pkt6 and the DHCPv6 fields are rejected, as Kea's DHCPv4 server does.
  * vendor[E].option[0] is an ordinary sub-option here; Kea 2.2 mistakes it for
    vendor[E].exists.

Built-in classes (`builtin_classes`): ALL and VENDOR_CLASS_<option 60> are computed
here; KNOWN/UNKNOWN by clientclasses.py once the host lookup is done. BOOTP (the
codec refuses requests without a message type), and the HA_, AFTER_ and EXTERNAL_
prefixes are not; the names still compile in member() since Kea defines them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from etcdhcp.codec import OPT_MESSAGE_TYPE, OPT_RELAY_AGENT_INFO, Request

OPT_VENDOR_CLASS_IDENTIFIER = 60
OPT_VENDOR_CLASS = 124  # V-I vendor class, RFC 3925
OPT_VENDOR_SPECIFIC = 125  # V-I vendor-specific information, RFC 3925
# Kea 2.2's DHCPv4 options of type `string` (std_option_defs.h): Kea trims their
# trailing NULs, drops them when nothing is left, and `.text` is their value.
KEA_STRING_OPTIONS = frozenset(
    {12, 14, 15, 17, 18, 40, 47, 56, 60, 62, 64, 66, 67, 86, 87, 98, 100, 101, 113, 114}
)
ALL = "ALL"  # the built-in class every request belongs to
BUILTIN_CLASS_NAMES = frozenset({ALL, "KNOWN", "UNKNOWN", "BOOTP"})
BUILTIN_CLASS_PREFIXES = ("VENDOR_CLASS_", "HA_", "AFTER_", "EXTERNAL_")
VENDOR_CLASS_PREFIX = "VENDOR_CLASS_"
BOOTP_HEADER_LEN = 236
_UINT32_MAX = 2**32 - 1
MAX_NESTING = 50  # parentheses, function calls and `not`s inside each other
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # Kea converts substring/split integers to int


class ExpressionError(ValueError):
    """An expression that does not compile: one line naming the position and the problem.

    The position is Kea's: the column (from 1) of the offending token, with its line
    when the expression spans several.
    """

    def __init__(self, where: tuple[int, int], problem: str) -> None:
        line, column = where
        at = f"{column}" if line == 1 else f"line {line} column {column}"
        super().__init__(f"at {at}: {problem}")
        self.line, self.column, self.problem = line, column, problem


class _EvalError(Exception):
    """Kea's EvalTypeError: the class does not match."""


@dataclass(frozen=True, slots=True)
class Context:
    """What the decoded request does not carry: the interface it arrived on."""

    iface: str = ""


def is_builtin_class(name: str) -> bool:
    """Kea's built-in class names, which member() accepts without a definition."""
    if name in BUILTIN_CLASS_NAMES:
        return True
    return any(name.startswith(p) and len(name) > len(p) for p in BUILTIN_CLASS_PREFIXES)


def builtin_classes(request: Request) -> list[str]:
    """ALL, and VENDOR_CLASS_<option 60> when the request has a vendor class identifier."""
    classes = [ALL]
    vendor = request.options.get(OPT_VENDOR_CLASS_IDENTIFIER, b"").rstrip(b"\x00")
    if vendor:
        classes.append(VENDOR_CLASS_PREFIX + vendor.decode("utf-8", "backslashreplace"))
    return classes


# ---- lexer (lexer.ll) ------------------------------------------------------------------

_KEYWORDS = (
    "option", "relay4", "relay6", "peeraddr", "linkaddr", "text", "hex", "exists", "pkt", "iface",
    "src", "dst", "len", "pkt4", "mac", "hlen", "htype", "ciaddr", "giaddr", "yiaddr", "siaddr",
    "pkt6", "msgtype", "transid", "vendor", "vendor-class", "data", "enterprise", "substring",
    "split", "all", "concat", "ifelse", "hexstring", "addrtotext", "int8totext", "int16totext",
    "int32totext", "uint8totext", "uint16totext", "uint32totext", "not", "and", "or", "member",
)  # fmt: skip
_PUNCTUATION = ("==", "(", ")", "[", "]", ",", ".", "*", "+")
# Flex takes the longest match, the earlier rule on a tie; the option-name rule
# counts the blanks and the ']' that must follow it.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("blank", re.compile(r"[ \t\n]+")),
    ("string", re.compile(r"'[^'\n]*'")),
    ("hex-literal", re.compile(r"0[xX][0-9a-fA-F]+")),
    ("integer", re.compile(r"-?[0-9]+")),
    ("name", re.compile(r"([A-Za-z](?:[-_A-Za-z0-9]*[A-Za-z0-9])?)[ \t\n]*(?=\])")),
    ("address", re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")),
    ("address", re.compile(r"[0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F:.]*")),
    *((word, re.compile(re.escape(word))) for word in (*_KEYWORDS, *_PUNCTUATION)),
)
_NAME_CONTEXT_LEN = 1  # the ']' after an option name counts toward its match length


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # the keyword or punctuation, or string/hex-literal/integer/name/address/end
    text: str
    where: tuple[int, int]  # line and column, from 1

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        return f"'{self.text}'" if self.kind != "string" else f"string {self.text}"


def _where(text: str, at: int) -> tuple[int, int]:
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    at = 0
    while at < len(text):
        best: tuple[int, str, re.Match[str]] | None = None
        for kind, pattern in _RULES:
            match = pattern.match(text, at)
            if match is None:
                continue
            length = match.end() - at + (_NAME_CONTEXT_LEN if kind == "name" else 0)
            if best is None or length > best[0]:
                best = (length, kind, match)
        if best is None:
            raise ExpressionError(_where(text, at), f"invalid character {text[at]!r}")
        _, kind, match = best
        if kind != "blank":
            value = match.group(1) if kind == "name" else match.group(0)
            out.append(_Token(kind, value, _where(text, at)))
        at = match.end()
    out.append(_Token("end", "", _where(text, len(text))))
    return out


# ---- evaluation state ------------------------------------------------------------------


_UNSET: object = object()


class _Packet:
    """One request as the expressions see it; sub-options are parsed once, when first asked."""

    __slots__ = ("_agent", "_vendor", "_vendor_class", "classes", "iface", "request", "strings")

    def __init__(
        self, request: Request, classes: Collection[str], iface: str, strings: Collection[int]
    ) -> None:
        self.request = request
        self.classes = classes
        self.iface = iface
        self.strings = strings
        self._agent: Any = _UNSET
        self._vendor: Any = _UNSET
        self._vendor_class: Any = _UNSET

    def option(self, code: int) -> bytes | None:
        raw = self.request.options.get(code)
        if raw is not None and code in self.strings:
            raw = raw.rstrip(b"\x00") or None  # Kea skips an empty string option
        return raw

    def suboptions(self, code: int) -> dict[int, bytes]:
        """Sub-options of option 82 (agent space: no PAD/END) or 125 (its vendor's)."""
        if code == OPT_VENDOR_SPECIFIC:
            vendor = self.vendor()
            return vendor[1] if vendor else {}
        if code != OPT_RELAY_AGENT_INFO:
            return {}
        if self._agent is _UNSET:
            self._agent = _agent_suboptions(self.option(code) or b"")
        return self._agent

    def vendor(self) -> tuple[int, dict[int, bytes]] | None:
        if self._vendor is _UNSET:
            self._vendor = _vendor_option(self.option(OPT_VENDOR_SPECIFIC))
        return self._vendor

    def vendor_class(self) -> tuple[int, list[bytes]] | None:
        if self._vendor_class is _UNSET:
            self._vendor_class = _vendor_class_option(self.option(OPT_VENDOR_CLASS))
        return self._vendor_class

    def length(self) -> int:
        """Kea's Pkt4::len(): the fixed header plus every option with its two header bytes."""
        values = (self.option(code) for code in self.request.options)
        return BOOTP_HEADER_LEN + sum(2 + len(v) for v in values if v is not None)


def _agent_suboptions(data: bytes) -> dict[int, bytes]:
    """Kea's unpackOptions4 outside the DHCPv4 space: stop at a truncated one; duplicates fuse."""
    out: dict[int, bytes] = {}
    at, n = 0, len(data)
    while at + 2 <= n:
        code, end = data[at], at + 2 + data[at + 1]
        if end > n:
            break
        out[code] = out.get(code, b"") + data[at + 2 : end]
        at = end
    return out


def _vendor_option(data: bytes | None) -> tuple[int, dict[int, bytes]] | None:
    """Option 125 as Kea reads it: enterprise id, then data-len chunks of sub-options."""
    if data is None or len(data) < 4:
        return None
    subs: dict[int, bytes] = {}
    at, n = 4, len(data)
    while at < n:
        chunk_end = at + 1 + data[at]
        if chunk_end > n:
            return None
        at += 1
        while at < chunk_end:
            if at + 2 > chunk_end or at + 2 + data[at + 1] > chunk_end:
                return None
            code, end = data[at], at + 2 + data[at + 1]
            subs[code] = subs.get(code, b"") + data[at + 2 : end]
            at = end
    return int.from_bytes(data[:4], "big"), subs


def _vendor_class_option(data: bytes | None) -> tuple[int, list[bytes]] | None:
    """Option 124 as Kea's OptionVendorClass reads it: enterprise id, then tuples."""
    if data is None or len(data) < 5:
        return None
    body = data[4:]
    tuples: list[bytes] = []
    at, n = 0, len(body)
    while at < n:
        end = at + 1 + body[at]
        if end > n:
            return None
        tuples.append(body[at + 1 : end])
        at = end
        if at != n:  # another enterprise id, ignored as Kea does
            at += 4
            if at + 1 >= n:
                return None
    return int.from_bytes(data[:4], "big"), tuples


def _untyped_text(code: int, value: bytes) -> bytes:
    """Kea's Option::toText(0), what `.text` gives for an option without a string type."""
    return f"type={code:03d}, len={len(value):03d}: {value.hex(':')}".encode()


# ---- nodes ------------------------------------------------------------------------------

BOOL, STRING = "boolean", "string"
_NOWHERE = (0, 0)  # primary() stamps the leading token's position
_Fn = Callable[[_Packet], object]


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # BOOL or STRING
    fn: _Fn
    where: tuple[int, int]


def _option_value(
    lookup: Callable[[_Packet], bytes | None], code: int, representation: str, is_string: bool
) -> _Node:
    """`.hex`, `.text` or `.exists` of an option that `lookup` finds (or not)."""
    if representation == "exists":
        return _Node(BOOL, lambda p: lookup(p) is not None, _NOWHERE)
    if representation == "hex" or is_string:
        return _Node(STRING, lambda p: lookup(p) or b"", _NOWHERE)

    def text(p: _Packet) -> bytes:
        value = lookup(p)
        return b"" if value is None else _untyped_text(code, value)

    return _Node(STRING, text, _NOWHERE)


def _substring(value: bytes, start: int, length: int | None) -> bytes:
    """TokenSubstring: negative start counts from the end, negative length goes left."""
    if not value:
        return b""
    if not _INT_MIN <= start <= _INT_MAX or not _INT_MIN <= (length or 0) <= _INT_MAX:
        raise _EvalError("substring position out of range")
    n = len(value)
    if length is None:
        length = n
    if start < -n or start >= n:
        return b""
    if start < 0:
        start += n
    if length < 0:
        length = -length
        if length <= start:
            start -= length
        else:
            length, start = start, 0
    return value[start : start + length]


def _split(value: bytes, delimiters: bytes, field: int) -> bytes:
    """TokenSplit: split on any of the delimiter characters; fields count from 1."""
    if not value:
        return b""
    if not _INT_MIN <= field <= _INT_MAX:
        raise _EvalError("split field out of range")
    if not delimiters:
        return value
    fields = re.split(b"[" + re.escape(delimiters) + b"]", value)
    return fields[field - 1] if 1 <= field <= len(fields) else b""


def _to_text(size: int, signed: bool) -> Callable[[bytes], bytes]:
    """int8totext .. uint32totext: big-endian bytes of exactly `size` to decimal."""

    def convert(value: bytes) -> bytes:
        if not value:
            return b""
        if len(value) != size:
            raise _EvalError(f"not {size} bytes")
        return str(int.from_bytes(value, "big", signed=signed)).encode()

    return convert


def _address_to_text(value: bytes) -> bytes:
    if not value:
        return b""
    if len(value) == 4:
        return socket.inet_ntoa(value).encode()
    if len(value) == 16:
        return socket.inet_ntop(socket.AF_INET6, value).encode()
    raise _EvalError("not an address")


_CONVERSIONS: dict[str, Callable[[bytes], bytes]] = {
    "addrtotext": _address_to_text,
    "int8totext": _to_text(1, True),
    "int16totext": _to_text(2, True),
    "int32totext": _to_text(4, True),
    "uint8totext": _to_text(1, False),
    "uint16totext": _to_text(2, False),
    "uint32totext": _to_text(4, False),
}


def _u32(value: int) -> bytes:
    return (value & _UINT32_MAX).to_bytes(4, "big")


def _packed(address: str) -> bytes:
    return socket.inet_aton(address)


_PKT4_FIELDS: dict[str, Callable[[Request], bytes]] = {
    "mac": lambda r: r.chaddr[: r.hlen],
    "hlen": lambda r: _u32(r.hlen),
    "htype": lambda r: _u32(r.htype),
    "ciaddr": lambda r: _packed(r.ciaddr),
    "giaddr": lambda r: _packed(r.giaddr),
    "yiaddr": lambda r: _packed(r.yiaddr),
    "siaddr": lambda r: _packed(r.siaddr),
    "msgtype": lambda r: _u32((r.options.get(OPT_MESSAGE_TYPE) or b"\x00")[0]),
    "transid": lambda r: _u32(r.xid),
}
_PKT_FIELDS: dict[str, Callable[[_Packet], bytes]] = {
    "iface": lambda p: p.iface.encode("utf-8", "backslashreplace"),
    "src": lambda p: _packed(p.request.src_ip),
    "dst": lambda p: _packed(p.request.dst_ip),
    "len": lambda p: _u32(p.length()),
}


# ---- parser (parser.yy, by recursive descent) -------------------------------------------


class _Parser:
    """Kea's grammar: or < and < not < == < + ; every string operand is a string_expr."""

    def __init__(
        self,
        text: str,
        is_defined: Callable[[str], bool],
        option_code: Callable[[str], int | None],
        string_options: Collection[int],
    ) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.is_defined = is_defined
        self.option_code = option_code
        self.string_options = string_options
        self.members: set[str] = set()
        self.depth = 0

    # -- token helpers

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self, *kinds: str) -> _Token:
        token = self.token
        if token.kind not in kinds:
            wanted = " or ".join(_DESCRIPTIONS.get(k, f"'{k}'") for k in kinds)
            raise ExpressionError(token.where, f"expected {wanted}, found {token.describe()}")
        self.at += 1
        return token

    def accept(self, kind: str) -> bool:
        if self.token.kind == kind:
            self.at += 1
            return True
        return False

    def integer(self, low: int, high: int, what: str, token: _Token | None = None) -> int:
        token = token or self.take("integer")
        value = int(token.text)
        if not low <= value <= high:
            raise ExpressionError(token.where, f"{what} {value} out of range {low}..{high}")
        return value

    def require(self, node: _Node, kind: str) -> _Node:
        if node.kind == kind:
            return node
        if kind == BOOL:  # a complete string where a condition belongs: Kea expects '=='
            raise ExpressionError(self.token.where, f"expected '==', found {self.token.describe()}")
        raise ExpressionError(node.where, "expected a string expression, found a condition")

    # -- grammar

    def top(self) -> _Node:
        node = self.require(self.disjunction(), BOOL)
        self.take("end")
        return node

    def disjunction(self) -> _Node:
        first = self.conjunction()
        operands = self.chain(first, "or", BOOL, self.conjunction)
        if len(operands) == 1:
            return first
        # Kea 2.2 evaluates every operand (an evaluation error in any means no match).
        return _Node(BOOL, lambda p: True in [bool(f(p)) for f in operands], first.where)

    def conjunction(self) -> _Node:
        first = self.negation()
        operands = self.chain(first, "and", BOOL, self.negation)
        if len(operands) == 1:
            return first
        return _Node(BOOL, lambda p: False not in [bool(f(p)) for f in operands], first.where)

    def chain(
        self, first: _Node, operator: str, kind: str, operand: Callable[[], _Node]
    ) -> list[_Fn]:
        """Operands of a left-associative chain, kept flat so evaluation does not recurse."""
        fns = [first.fn]
        while self.token.kind == operator:
            self.require(first, kind)
            self.at += 1
            fns.append(self.require(operand(), kind).fn)
        return fns

    def negation(self) -> _Node:
        token = self.token
        if not self.accept("not"):
            return self.comparison()
        self.nest(token)
        fn = self.require(self.negation(), BOOL).fn
        self.depth -= 1
        return _Node(BOOL, lambda p: not fn(p), token.where)

    def nest(self, token: _Token) -> None:
        """Bound the nesting, so neither parsing nor evaluation can exhaust the stack."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(token.where, f"nested more than {MAX_NESTING} deep")

    def comparison(self) -> _Node:
        left = self.concatenation()
        if self.token.kind != "==":
            return left
        self.require(left, STRING)
        self.at += 1
        a, b = left.fn, self.string(self.concatenation())
        return _Node(BOOL, lambda p: a(p) == b(p), left.where)

    def concatenation(self) -> _Node:
        first = self.primary()
        parts = self.chain(first, "+", STRING, self.primary)
        if len(parts) == 1:
            return first
        return _Node(STRING, lambda p: b"".join([f(p) for f in parts]), first.where)

    def string(self, node: _Node) -> _Callable:
        return self.require(node, STRING).fn

    def string_argument(self) -> _Callable:
        return self.string(self.disjunction())

    def primary(self) -> _Node:
        token = self.token
        if token.kind not in _PRIMARY:
            raise ExpressionError(token.where, f"expected an expression, found {token.describe()}")
        self.at += 1
        self.nest(token)
        node = _PRIMARY[token.kind](self, token)
        self.depth -= 1
        return _Node(node.kind, node.fn, token.where)

    # -- primaries, one per leading token

    def parenthesised(self, _: _Token) -> _Node:
        node = self.disjunction()
        self.take(")")
        return node

    def literal_string(self, token: _Token) -> _Node:
        value = token.text[1:-1].encode()
        return _Node(STRING, lambda p: value, _NOWHERE)

    def literal_hex(self, token: _Token) -> _Node:
        digits = token.text[2:]
        value = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
        return _Node(STRING, lambda p: value, _NOWHERE)

    def literal_address(self, token: _Token) -> _Node:
        try:
            value = ipaddress.ip_address(token.text).packed
        except ValueError:
            raise ExpressionError(token.where, f"{token.text} is not an IP address") from None
        return _Node(STRING, lambda p: value, _NOWHERE)

    def literal_integer(self, token: _Token) -> _Node:
        value = _u32(self.integer(0, _UINT32_MAX, "integer", token))
        return _Node(STRING, lambda p: value, _NOWHERE)

    def representation(self) -> str:
        self.take(".")
        return self.take("hex", "text", "exists").kind

    def option(self, _: _Token) -> _Node:
        self.take("[")
        token = self.take("integer", "name")
        if token.kind == "name":
            code = self.option_code(token.text)
            if code is None:
                raise ExpressionError(token.where, f"option '{token.text}' is not defined")
        else:
            code = self.integer(0, 255, "option code", token)
        self.take("]")
        if self.token.kind == "." and self.tokens[self.at + 1].kind == "option":
            self.at += 2
            return self.suboption(code)
        is_string = code in self.string_options
        return _option_value(lambda p: p.option(code), code, self.representation(), is_string)

    def suboption(self, parent: int) -> _Node:
        """`[M].hex|.text|.exists` of a sub-option of `parent` (after relay4 or .option)."""
        self.take("[")
        code = self.integer(0, 255, "option code")
        self.take("]")
        lookup = lambda p: p.suboptions(parent).get(code)  # noqa: E731
        return _option_value(lookup, code, self.representation(), False)

    def relay4(self, _: _Token) -> _Node:
        return self.suboption(OPT_RELAY_AGENT_INFO)

    def enterprise(self) -> int:
        self.take("[")
        eid = 0 if self.accept("*") else self.integer(0, _UINT32_MAX, "enterprise id")
        self.take("]")
        return eid

    def vendor(self, _: _Token) -> _Node:
        if self.accept("."):
            self.take("enterprise")
            return _Node(STRING, lambda p: _u32(v[0]) if (v := p.vendor()) else b"", _NOWHERE)
        eid = self.enterprise()
        self.take(".")

        def found(p: _Packet) -> tuple[int, dict[int, bytes]] | None:
            v = p.vendor()
            return v if v and (eid == 0 or v[0] == eid) else None

        if self.take("exists", "option").kind == "exists":
            return _Node(BOOL, lambda p: found(p) is not None, _NOWHERE)
        node = self.suboption(OPT_VENDOR_SPECIFIC)
        if node.kind == BOOL:
            return _Node(BOOL, lambda p: found(p) is not None and node.fn(p), _NOWHERE)
        return _Node(STRING, lambda p: node.fn(p) if found(p) else b"", _NOWHERE)

    def vendor_class(self, _: _Token) -> _Node:
        if self.accept("."):
            self.take("enterprise")
            return _Node(STRING, lambda p: _u32(v[0]) if (v := p.vendor_class()) else b"", _NOWHERE)
        eid = self.enterprise()
        self.take(".")

        def found(p: _Packet) -> tuple[int, list[bytes]] | None:
            v = p.vendor_class()
            return v if v and (eid == 0 or v[0] == eid) else None

        if self.take("exists", "data").kind == "exists":
            return _Node(BOOL, lambda p: found(p) is not None, _NOWHERE)
        index = 0
        if self.accept("["):
            index = self.integer(0, 255, "data index")
            self.take("]")

        def data(p: _Packet) -> bytes:
            v = found(p)
            return v[1][index] if v and index < len(v[1]) else b""

        return _Node(STRING, data, _NOWHERE)

    def pkt4(self, _: _Token) -> _Node:
        self.take(".")
        field = _PKT4_FIELDS[self.take(*_PKT4_FIELDS).kind]
        return _Node(STRING, lambda p: field(p.request), _NOWHERE)

    def pkt(self, _: _Token) -> _Node:
        self.take(".")
        field = _PKT_FIELDS[self.take(*_PKT_FIELDS).kind]
        return _Node(STRING, field, _NOWHERE)

    def dhcpv6_only(self, token: _Token) -> _Node:
        if token.kind == "relay6":  # Kea objects to its nest level first
            self.take("[")
            token = self.take("integer")
            raise ExpressionError(token.where, "relay6 nest level is invalid in DHCPv4")
        raise ExpressionError(token.where, f"{token.text} can only be used in DHCPv6")

    def member(self, _: _Token) -> _Node:
        self.take("(")
        token = self.take("string")
        name = token.text[1:-1]
        if not self.is_defined(name):
            raise ExpressionError(token.where, f"not defined client class '{name}'")
        self.members.add(name)
        self.take(")")
        return _Node(BOOL, lambda p: name in p.classes, _NOWHERE)

    def call(self, _: _Token) -> _Callable:
        self.take("(")
        return self.string_argument()

    def any_integer(self) -> int:
        """Kea's lexer takes any 64-bit integer; its evaluator then needs a C int."""
        return self.integer(-(2**63), 2**63 - 1, "integer")

    def substring(self, token: _Token) -> _Node:
        value = self.call(token)
        self.take(",")
        start = self.any_integer()
        self.take(",")
        length = None if self.accept("all") else self.any_integer()
        self.take(")")
        return _Node(STRING, lambda p: _substring(value(p), start, length), _NOWHERE)

    def split(self, token: _Token) -> _Node:
        value = self.call(token)
        self.take(",")
        delimiters = self.string_argument()
        self.take(",")
        field = self.any_integer()
        self.take(")")
        return _Node(STRING, lambda p: _split(value(p), delimiters(p), field), _NOWHERE)

    def two_strings(self, token: _Token) -> tuple[_Callable, _Callable]:
        first = self.call(token)
        self.take(",")
        second = self.string_argument()
        self.take(")")
        return first, second

    def concat(self, token: _Token) -> _Node:
        a, b = self.two_strings(token)
        return _Node(STRING, lambda p: a(p) + b(p), _NOWHERE)

    def hexstring(self, token: _Token) -> _Node:
        value, separator = self.two_strings(token)

        def render(p: _Packet) -> bytes:
            return separator(p).join(b"%02x" % byte for byte in value(p))

        return _Node(STRING, render, _NOWHERE)

    def ifelse(self, _: _Token) -> _Node:
        self.take("(")
        condition = self.require(self.disjunction(), BOOL).fn
        self.take(",")
        when_true = self.string_argument()
        self.take(",")
        when_false = self.string_argument()
        self.take(")")

        def choose(p: _Packet) -> bytes:
            yes, no = when_true(p), when_false(p)  # Kea evaluates both
            return yes if condition(p) else no

        return _Node(STRING, choose, _NOWHERE)

    def conversion(self, token: _Token) -> _Node:
        convert = _CONVERSIONS[token.kind]
        value = self.call(token)
        self.take(")")
        return _Node(STRING, lambda p: convert(value(p)), _NOWHERE)


_Callable = Callable[[_Packet], bytes]
_DESCRIPTIONS = {
    "string": "a string",
    "integer": "an integer",
    "name": "an option name",
    "end": "end of expression",
}
_PRIMARY: dict[str, Callable[[_Parser, _Token], _Node]] = {
    "(": _Parser.parenthesised,
    "string": _Parser.literal_string,
    "hex-literal": _Parser.literal_hex,
    "address": _Parser.literal_address,
    "integer": _Parser.literal_integer,
    "option": _Parser.option,
    "relay4": _Parser.relay4,
    "vendor": _Parser.vendor,
    "vendor-class": _Parser.vendor_class,
    "pkt4": _Parser.pkt4,
    "pkt": _Parser.pkt,
    "pkt6": _Parser.dhcpv6_only,
    "relay6": _Parser.dhcpv6_only,
    "member": _Parser.member,
    "substring": _Parser.substring,
    "split": _Parser.split,
    "concat": _Parser.concat,
    "hexstring": _Parser.hexstring,
    "ifelse": _Parser.ifelse,
    **dict.fromkeys(_CONVERSIONS, _Parser.conversion),
}


# ---- public API -------------------------------------------------------------------------


class Expression:
    """A compiled `test`: evaluate() is total, a malformed request just does not match."""

    __slots__ = ("_fn", "_strings", "members", "text")

    def __init__(
        self, text: str, members: frozenset[str], fn: _Fn, strings: Collection[int]
    ) -> None:
        self.text = text
        self.members = members  # classes named in member(), for ordering and KNOWN
        self._fn = fn
        self._strings = strings

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @property
    def depends_on_known(self) -> bool:
        """Kea evaluates such classes in a second pass, after the host lookup."""
        return bool(self.members & {"KNOWN", "UNKNOWN"})

    def evaluate(
        self,
        request: Request,
        classes: Collection[str] = frozenset(),
        context: Context | None = None,
    ) -> bool:
        """Whether `request` matches; `classes` are those it already belongs to."""
        iface = context.iface if context is not None else ""
        return self._match(_Packet(request, classes, iface, self._strings))

    def _match(self, packet: _Packet) -> bool:
        try:
            return bool(self._fn(packet))
        except _EvalError:
            return False


def classify(
    request: Request,
    tests: Iterable[tuple[str, Expression]],
    context: Context | None = None,
    string_options: Collection[int] = KEA_STRING_OPTIONS,
    joined: Iterable[str] | None = None,
) -> list[str]:
    """Kea's order: the built-in classes (or the classes already `joined`), then each
    (name, test) in turn that matches.

    A test sees the classes matched before it, so member() of an earlier class works.
    """
    classes = builtin_classes(request) if joined is None else list(joined)
    packet = _Packet(request, classes, context.iface if context else "", string_options)
    for name, test in tests:
        if test._match(packet):
            classes.append(name)
    return classes


def compile(
    text: str,
    known_classes: Iterable[str] = (),
    option_code: Callable[[str], int | None] | None = None,
    string_options: Collection[int] = KEA_STRING_OPTIONS,
) -> Expression:
    """Compile a Kea `test` expression, or raise ExpressionError naming the column.

    `known_classes` are the classes defined before this one (Kea's rule: member() of a
    later or unknown class is an error); built-in names are always accepted.
    `option_code` maps an option name to its code for option[name].
    """
    defined = frozenset(known_classes)
    parser = _Parser(
        text,
        lambda name: name in defined or is_builtin_class(name),
        option_code or (lambda name: None),
        string_options,
    )
    node = parser.top()
    return Expression(text, frozenset(parser.members), node.fn, frozenset(string_options))
