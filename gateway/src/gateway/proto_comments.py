"""The proto comments, by full name, read from the descriptor set `make protos` writes.

Generated `_pb2` modules carry no comments; protos/generate.py also writes
switchyard/descriptors.binpb (protoc --include_source_info), whose source
locations hold each element's leading comment. The OpenAPI document takes its
summaries and descriptions from here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources

from google.protobuf import descriptor_pb2

DESCRIPTOR_SET = "descriptors.binpb"

# Field numbers of FileDescriptorProto / DescriptorProto / ... that source
# locations' paths are made of (descriptor.proto).
_FILE_MESSAGES, _FILE_ENUMS, _FILE_SERVICES = 4, 5, 6
_MESSAGE_FIELDS, _MESSAGE_NESTED, _MESSAGE_ENUMS = 2, 3, 4
_ENUM_VALUES = 2
_SERVICE_METHODS = 2


def _clean(text: str) -> str:
    """A comment without its leading spaces, paragraphs kept."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip()


def _names_of_file(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Source-location path -> full name, for every element of one file."""
    prefix = f"{proto.package}." if proto.package else ""
    names: dict[tuple[int, ...], str] = {}

    def enum(path: tuple[int, ...], value: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        full = f"{scope}{value.name}"
        names[path] = full
        for index, item in enumerate(value.value):
            # Enum values are scoped beside their enum, as in protobuf itself;
            # keyed under the enum here so that two enums never collide.
            names[(*path, _ENUM_VALUES, index)] = f"{full}.{item.name}"

    def message(path: tuple[int, ...], value: descriptor_pb2.DescriptorProto, scope: str) -> None:
        full = f"{scope}{value.name}"
        names[path] = full
        for index, field in enumerate(value.field):
            names[(*path, _MESSAGE_FIELDS, index)] = f"{full}.{field.name}"
        for index, nested in enumerate(value.nested_type):
            message((*path, _MESSAGE_NESTED, index), nested, f"{full}.")
        for index, nested_enum in enumerate(value.enum_type):
            enum((*path, _MESSAGE_ENUMS, index), nested_enum, f"{full}.")

    for index, item in enumerate(proto.message_type):
        message((_FILE_MESSAGES, index), item, prefix)
    for index, item_enum in enumerate(proto.enum_type):
        enum((_FILE_ENUMS, index), item_enum, prefix)
    for index, service in enumerate(proto.service):
        full = f"{prefix}{service.name}"
        names[(_FILE_SERVICES, index)] = full
        for method_index, method in enumerate(service.method):
            names[(_FILE_SERVICES, index, _SERVICE_METHODS, method_index)] = f"{full}.{method.name}"
    return names


def comments_of(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Full name -> leading comment of every commented element of `files`."""
    comments: dict[str, str] = {}
    for proto in files:
        names = _names_of_file(proto)
        for location in proto.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                comments[name] = _clean(location.leading_comments)
    return comments


@functools.cache
def proto_comments() -> Mapping[str, str]:
    """The comments of every proto `make protos` compiled, by full name.

    Example::

        proto_comments()["switchyard.payment.v1.PaymentService.GetWallet"]
        # 'The caller's balances, one per currency they have been funded in.'
    """
    path = resources.files("switchyard").joinpath(DESCRIPTOR_SET)
    if not path.is_file():
        raise RuntimeError(f"switchyard/{DESCRIPTOR_SET} is missing: run `make protos`")
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    return comments_of(list(files.file))


__all__ = ["comments_of", "proto_comments"]
