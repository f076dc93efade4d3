#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""View one VDO.Ninja stream with vdoninjasrc from Python (PyGObject).

    GST_PLUGIN_PATH=target/release python3 examples/python/view.py cam1 --password secret

Shows the video in a window and plays the audio (--headless: count frames into fakesinks
instead, and exit 0 once --frames video frames have arrived).
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
                    help="any other vdoninjasrc property (repeatable)")
    ap.add_argument("--headless", action="store_true")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds (headless)")
    args = ap.parse_args()

    Gst.init(None)
    src = Gst.ElementFactory.make("vdoninjasrc", "src")
    if src is None:
        sys.exit("vdoninjasrc not found: set GST_PLUGIN_PATH to the folder of libgstvdoninja.so")
    src.set_property("server", args.server)
    src.set_property("stream-id", args.stream_id)
    src.set_property("decode", True)
    if args.password is not None:
        src.set_property("password", args.password)
    if args.room:
        src.set_property("room", args.room)
    for kv in args.set:
        name, _, value = kv.partition("=")
        if src.find_property(name) is None:
            sys.exit(f"--set {kv}: vdoninjasrc has no property {name!r}")
        Gst.util_set_object_arg(src, name, value)

    pipeline = Gst.Pipeline.new("view")
    pipeline.add(src)
    loop = GLib.MainLoop()
    frames = {"video": 0, "audio": 0}
    result = {"code": 1}

    def count(kind):
        def probe(_pad, _info):
            frames[kind] += 1
            if args.headless and frames["video"] >= args.frames and frames["audio"] > 0:
                result["code"] = 0
                GLib.idle_add(loop.quit)
            return Gst.PadProbeReturn.OK
        return probe

    def on_pad(_src, pad):
        kind = "video" if pad.get_name().startswith("video_") else "audio"
        if args.headless:
            desc = "queue ! fakesink sync=false"
        elif kind == "video":
            desc = "queue ! videoconvert ! autovideosink"
        else:
            desc = "queue ! audioconvert ! audioresample ! autoaudiosink"
        branch = Gst.parse_bin_from_description(desc, True)
        pipeline.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        pad.add_probe(Gst.PadProbeType.BUFFER, count(kind))
        print(f"{pad.get_name()}: {pad.get_current_caps().to_string() if pad.get_current_caps() else ''}")

    src.connect("pad-added", on_pad)

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"error: {err.message} ({dbg})", file=sys.stderr)
            loop.quit()
        elif msg.type == Gst.MessageType.WARNING:
            print(f"warning: {msg.parse_warning()[0].message}", file=sys.stderr)
        elif msg.type == Gst.MessageType.ELEMENT and msg.get_structure().get_name().startswith("vdoninja/"):
            print(msg.get_structure().to_string())
        return True

    bus = pipeline.get_bus()
    bus.add_watch(GLib.PRIORITY_DEFAULT, on_message)
    if args.headless:
        GLib.timeout_add(int(args.timeout * 1000), loop.quit)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        loop.run()
    except KeyboardInterrupt:
        result["code"] = 0
    pipeline.set_state(Gst.State.NULL)
    print(f"{frames['video']} video and {frames['audio']} audio buffers")
    sys.exit(result["code"] if args.headless else 0)


if __name__ == "__main__":
    main()
