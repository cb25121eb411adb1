"""The vendored buf/validate/validate.proto is the one the pinned protovalidate bundles.

Our protos are compiled against protos/buf/validate/validate.proto; the
validator reads their rules with its own bundled copy. If the two drift (the
package bumped without the vendored proto, or the reverse), a rule could be
written that one side does not know: this test names the difference.
"""

from __future__ import annotations

from collections.abc import Iterable

from buf.validate import validate_pb2
from google.protobuf import descriptor_pb2
from protovalidate._gen.buf.validate import validate_pb as bundled


def _clear_json_names(fields: Iterable[descriptor_pb2.FieldDescriptorProto]) -> None:
    for field in fields:
        field.ClearField("json_name")


def _comparable(serialized: bytes) -> descriptor_pb2.FileDescriptorProto:
    # What the two compilers write differently and no rule depends on: the
    # file-level options are per-language package names (java_package,
    # csharp_namespace, ...) that the bundler's managed mode rewrites, and
    # json_name is written by buf, left implicit by protoc. The messages,
    # fields, rules and their CEL are what must agree.
    proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    proto.ClearField("options")
    _clear_json_names(proto.extension)
    pending = list(proto.message_type)
    while pending:
        message = pending.pop()
        _clear_json_names(message.field)
        _clear_json_names(message.extension)
        pending.extend(message.nested_type)
    return proto


def test_vendored_validate_proto_matches_the_bundled_one() -> None:
    ours = _comparable(validate_pb2.DESCRIPTOR.serialized_pb)
    theirs = _comparable(bundled.desc().proto.to_binary())

    assert ours.name == theirs.name == "buf/validate/validate.proto"
    assert {m.name for m in ours.message_type} == {m.name for m in theirs.message_type}
    for ours_message, theirs_message in zip(ours.message_type, theirs.message_type, strict=True):
        assert ours_message == theirs_message, ours_message.name
    assert ours == theirs
