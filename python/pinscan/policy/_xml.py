# SPDX-License-Identifier: Apache-2.0
"""Reading an XML policy file into a small element tree with line numbers, and the questions a
pull parser (Android's ``XmlPullParser``) asks of an element.

Entities and DTDs are refused (defusedxml's rules), so hostile input cannot expand or reach
outside the file; every failure is a :class:`PolicyError` with the line when expat knows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from pinscan.errors import PolicyError

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
    (text runs and child elements in order; comments dropped as aapt2 drops them)."""

    name: str
    attrs: dict[str, str]
    line: int
    content: list[str | Node] = field(default_factory=list)
    end_line: int = 0

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

    def refuse(what: str) -> None:
        raise PolicyError(source, f"{what} not allowed in a policy file", parser.CurrentLineNumber)

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            refuse(f"nesting deeper than {MAX_DEPTH} elements")
        plain = {key: value for key, value in attrs.items() if " " not in key}
        node = Node(name.rpartition(" ")[2], plain, parser.CurrentLineNumber)
        if stack:
            stack[-1].content.append(node)
        else:
            roots.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop().end_line = parser.CurrentLineNumber

    def text(chunk: str) -> None:
        if stack:
            content = stack[-1].content
            if content and isinstance(content[-1], str):
                content[-1] += chunk
            else:
                content.append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = lambda *_: refuse("a DTD is")
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
