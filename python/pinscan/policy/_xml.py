# SPDX-License-Identifier: Apache-2.0
"""Reading an XML policy file into a small element tree with line numbers, and the questions a
pull parser (Android's ``XmlPullParser``) asks of an element.

The tree is the one aapt2 compiles (AOSP ``tools/aapt2/xml/XmlDom.cpp`` ``Inflate``,
``format/binary/XmlFlattener.cpp``): a comment ends the text before it (``CommentDataHandler``
calls ``FinishPendingText``), so ``a<!-- c -->b`` is two text nodes, as a device reads it;
whitespace-only text is dropped (``XmlFlattenerVisitor::Visit(Text*)``).

Entity declarations, internal DTD subsets and external DTDs are refused (defusedxml's rules), so
hostile input cannot expand or reach outside the file; a bare ``<!DOCTYPE name>`` declares
nothing and is read, as aapt2 reads it. Every failure is a :class:`PolicyError` with the line
when expat knows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from pinscan.errors import PolicyError

# What aapt2's util::TrimWhitespace strips (C isspace).
_C_SPACE = " \t\n\v\f\r"
# Deeper files are refused rather than walked: no real config nests more than a few levels.
MAX_DEPTH = 200


class CompiledValue(str):
    """An attribute value as a compiled app holds it (aapt typed it): the text Android's
    ``getAttributeValue`` returns, with the type and data its typed getters read.
    ``includeSubdomains="1"`` is ``CompiledValue("1", "int_dec", 1)``, which
    ``getAttributeBooleanValue`` reads as true; ``src="@raw/ca"`` a reference to an id."""

    kind: str
    data: int | float | bool | None

    def __new__(cls, text: str, kind: str, data: int | float | bool | None) -> CompiledValue:
        value = super().__new__(cls, text)
        value.kind = kind
        value.data = data
        return value


@dataclass
class Node:
    """An element as the pull parsers see it: local name, un-namespaced attributes, and content
    (text nodes and child elements in order, as aapt2 compiles them: a comment splits the text
    around it, whitespace-only text is dropped). ``namespaced`` keeps the attributes in a
    namespace as (namespace URI, local name): the readers do not read them, but aapt2 links
    them."""

    name: str
    attrs: dict[str, str]
    line: int
    content: list[str | Node] = field(default_factory=list)
    end_line: int = 0
    namespaced: list[tuple[str, str]] = field(default_factory=list)

    @property
    def children(self) -> list[Node]:
        return [item for item in self.content if isinstance(item, Node)]


def read_xml(data: bytes, source: str) -> Node:
    """The document's root element, with line numbers."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    stack: list[Node] = []
    roots: list[Node] = []
    # Set by a comment: the next text starts a new node (aapt2's FinishPendingText).
    boundary = [False]

    def refuse(what: str) -> None:
        raise PolicyError(source, f"{what} not allowed in a policy file", parser.CurrentLineNumber)

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            refuse(f"nesting deeper than {MAX_DEPTH} elements")
        plain = {key: value for key, value in attrs.items() if " " not in key}
        node = Node(name.rpartition(" ")[2], plain, parser.CurrentLineNumber)
        node.namespaced = [
            (key.partition(" ")[0], key.partition(" ")[2]) for key in attrs if " " in key
        ]
        if stack:
            stack[-1].content.append(node)
        else:
            roots.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        node = stack.pop()
        node.end_line = parser.CurrentLineNumber
        node.content = [
            item for item in node.content if not isinstance(item, str) or item.strip(_C_SPACE)
        ]

    def text(chunk: str) -> None:
        if stack:
            content = stack[-1].content
            if content and isinstance(content[-1], str) and not boundary[0]:
                content[-1] += chunk
            else:
                content.append(chunk)
        boundary[0] = False

    def comment(_text: str) -> None:
        boundary[0] = True

    def doctype(_name: str, system_id: str | None, public_id: str | None, subset: int) -> None:
        if subset or system_id or public_id:
            refuse("a DTD is")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.CommentHandler = comment
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = lambda *_: refuse("an entity declaration is")
    parser.UnparsedEntityDeclHandler = lambda *_: refuse("an entity declaration is")
    parser.ExternalEntityRefHandler = lambda *_: refuse("an external entity is")  # type: ignore[assignment,return-value]
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise PolicyError(
            source, f"not well-formed XML: {expat.errors.messages[exc.code]}", exc.lineno
        ) from None
    except (ValueError, LookupError) as exc:  # an encoding expat or Python cannot decode
        raise PolicyError(source, f"not readable XML: {exc}") from None
    return roots[0]


def only_text(node: Node) -> str | None:
    """The element's text when it holds text only (``next() == TEXT`` then ``END_TAG``); ``""``
    for an empty element; None when it holds an element."""
    if not node.content:
        return ""
    if len(node.content) == 1 and isinstance(node.content[0], str):
        return node.content[0]
    return None


def leading_text(node: Node) -> str | None:
    """The text right after the start tag (``next() == TEXT``), None when there is none."""
    if node.content and isinstance(node.content[0], str):
        return node.content[0]
    return None


def descendants(node: Node, wanted: set[str]) -> Iterator[Node]:
    """Elements named ``wanted`` below ``node`` in document order, at any depth, without looking
    inside them: a pull parser's event loop that consumes each one it acts on."""
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.name in wanted:
            yield child
        else:
            stack.extend(reversed(child.children))


__all__ = [
    "MAX_DEPTH",
    "CompiledValue",
    "Node",
    "descendants",
    "leading_text",
    "only_text",
    "read_xml",
]
