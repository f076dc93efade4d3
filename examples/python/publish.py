#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Publish a test pattern and a tone to VDO.Ninja with vdoninjasink from Python (PyGObject).

    GST_PLUGIN_PATH=target/release python3 examples/python/publish.py cam1 --password secret

Viewers open https://vdo.ninja/?view=cam1&password=secret. Prints viewers as they come and
go; runs until Ctrl-C (or --duration seconds).
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stream_id")
    ap.add_argument("--password")
    ap.add_argument("--room")
    ap.add_argument("--server", default="wss://wss.vdo.ninja:443")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="any other vdoninjasink property (repeatable)")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    args = ap.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! "
        "vdoninjasink name=sink audiotestsrc is-live=true wave=ticks ! sink.")
    sink = pipeline.get_by_name("sink")
    sink.set_property("server", args.server)
    sink.set_property("stream-id", args.stream_id)
    if args.password is not None:
        sink.set_property("password", args.password)
    if args.room:
        sink.set_property("room", args.room)
    for kv in args.set:
        name, _, value = kv.partition("=")
        if sink.find_property(name) is None:
            sys.exit(f"--set {kv}: vdoninjasink has no property {name!r}")
        Gst.util_set_object_arg(sink, name, value)

    sink.connect("viewer-added", lambda _s, uuid: print(f"viewer {uuid} added", flush=True))
    sink.connect("viewer-removed", lambda _s, uuid, reason: print(f"viewer {uuid} removed ({reason})", flush=True))

    loop = GLib.MainLoop()
    code = {"value": 0}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"error: {err.message} ({dbg})", file=sys.stderr)
            code["value"] = 1
            loop.quit()
        elif msg.type == Gst.MessageType.WARNING:
            print(f"warning: {msg.parse_warning()[0].message}", file=sys.stderr)
        return True

    pipeline.get_bus().add_watch(GLib.PRIORITY_DEFAULT, on_message)
    if args.duration:
        GLib.timeout_add(int(args.duration * 1000), loop.quit)
    pipeline.set_state(Gst.State.PLAYING)
    print(f"publishing {args.stream_id}", flush=True)
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    pipeline.set_state(Gst.State.NULL)
    sys.exit(code["value"])


if __name__ == "__main__":
    main()
