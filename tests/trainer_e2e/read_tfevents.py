#!/usr/bin/python3
"""Reads a TensorBoard event file independently of gpt-rank's C++: the framing and
both masked CRC-32Cs of every record are checked here (a bitwise CRC, not a table),
and each record is decoded with Debian's python3-protobuf using classes compiled by
protoc from proto/tensorboard/*.proto (TensorBoard's schema). Prints one JSON object
per event: {"wall_time", "step", "file_version"?, "writer"?, "tag"?, "value"?, "record"}
("record": the record's bytes in hex, to compare with other readers).
Exit 1, naming the byte offset, on a torn record, a bad CRC or an undecodable event.

Usage: read_tfevents.py PROTO_DIR EVENT_FILE
"""
import json
import os
import struct
import subprocess
import sys
import tempfile


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(blob):
    at = 0
    while at < len(blob):
        if len(blob) - at < 12:
            raise ValueError(f"torn header at byte {at}")
        header = blob[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[at + 8:at + 12])
        if length_crc != masked(crc32c(header)):
            raise ValueError(f"bad length CRC at byte {at}")
        if len(blob) - at - 12 < length + 4:
            raise ValueError(f"torn record at byte {at}")
        data = blob[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[at + 12 + length:at + 16 + length])
        if data_crc != masked(crc32c(data)):
            raise ValueError(f"bad data CRC at byte {at}")
        yield data
        at += 16 + length


def main():
    proto_dir, path = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as gen:
        subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={gen}",
                        "tensorboard/event.proto", "tensorboard/summary.proto"], check=True)
        sys.path.insert(0, gen)
        from tensorboard import event_pb2  # pylint: disable=import-outside-toplevel
        with open(path, "rb") as f:
            blob = f.read()
        try:
            for data in records(blob):
                event = event_pb2.Event()
                event.ParseFromString(data)
                out = {"wall_time": event.wall_time, "step": event.step, "record": data.hex()}
                which = event.WhichOneof("what")
                if which == "file_version":
                    out["file_version"] = event.file_version
                    out["writer"] = event.source_metadata.writer
                elif which == "summary":
                    if len(event.summary.value) != 1:
                        raise ValueError(f"{len(event.summary.value)} values in one event")
                    value = event.summary.value[0]
                    if value.WhichOneof("value") != "simple_value":
                        raise ValueError(f"tag {value.tag}: not a simple_value")
                    out["tag"] = value.tag
                    out["value"] = value.simple_value
                else:
                    raise ValueError(f"event with {which}")
                print(json.dumps(out))
        except ValueError as e:
            print(f"read_tfevents: {path}: {e}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
