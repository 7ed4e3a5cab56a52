"""Writes example_workflows/*.json (UI format, what ComfyUI saves and loads).

Run it after changing a node's inputs; the tests convert these same files to API format against
the live /object_info, so a workflow that drifts from the nodes fails there.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "example_workflows"

# Widget values of Kling Image to Video in schema order: prompt, negative_prompt, model_name, mode,
# duration, cfg_scale, seed, (seed control), external_task_id, callback_url, timeout, concurrency,
# frame_cap, frame_stride, max_side, sound, resolution, storyboard (the camera_control and motion_brush
# sockets have no widget). ``resolution`` is what new-standard models read; legacy models read ``mode``.
def kling_widgets(prompt: str, model: str, mode: str, duration: str, sound: str = "off",
                  resolution: str = "720p", negative_prompt: str = "blurry, distorted",
                  storyboard: str = "") -> list[Any]:
    return [prompt, negative_prompt, model, mode, duration, 0.5, 0, "fixed", "", "", 1800, 2, 0, 1, 0, sound,
            resolution, storyboard]


class Graph:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []

    def node(self, kind: str, pos: tuple[int, int], widgets: list[Any], inputs: list[tuple[str, str]] = (),
             outputs: list[tuple[str, str]] = (), size: tuple[int, int] = (320, 160), title: str | None = None) -> int:
        node_id = len(self.nodes) + 1
        entry = {
            "id": node_id, "type": kind, "pos": list(pos), "size": list(size), "flags": {}, "order": node_id - 1,
            "mode": 0,
            "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
            "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
            "properties": {"Node name for S&R": kind},
            "widgets_values": widgets,
        }
        if title:
            entry["title"] = title
        self.nodes.append(entry)
        return node_id

    def link(self, source: int, source_slot: int, target: int, target_input: str) -> None:
        link_id = len(self.links) + 1
        src, dst = self.nodes[source - 1], self.nodes[target - 1]
        slot = next(i for i, s in enumerate(dst["inputs"]) if s["name"] == target_input)
        kind = src["outputs"][source_slot]["type"]
        dst["inputs"][slot]["link"] = link_id
        if kind in ("INT", "FLOAT", "STRING"):
            dst["inputs"][slot]["widget"] = {"name": target_input}
        src["outputs"][source_slot]["links"].append(link_id)
        self.links.append([link_id, source, source_slot, target, slot, kind])

    def workflow(self) -> dict[str, Any]:
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
                "version": 0.4}


KLING_INPUTS = [("image", "IMAGE"), ("image_tail", "IMAGE"), ("camera_control", "KLING_CAMERA_CONTROL"),
                ("motion_brush", "KLING_MOTION_BRUSH")]
KLING_OUTPUTS = [("frames", "IMAGE"), ("fps", "FLOAT"), ("video", "VIDEO"), ("task_id", "STRING"),
                 ("video_id", "STRING"), ("audio", "AUDIO")]


def add_video_outputs(g: Graph, kling: int, x: int, prefix: str) -> None:
    create = g.node("CreateVideo", (x, 80), [24], [("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT")],
                    [("VIDEO", "VIDEO")], size=(270, 80))
    save = g.node("SaveVideo", (x + 320, 80), [prefix, "auto", "auto"], [("video", "VIDEO")], size=(420, 400))
    preview = g.node("PreviewImage", (x, 300), [], [("images", "IMAGE")], size=(270, 260))
    g.link(kling, 0, create, "images")
    g.link(kling, 1, create, "fps")
    g.link(create, 0, save, "video")
    g.link(kling, 0, preview, "images")


def image_to_video() -> dict[str, Any]:
    g = Graph()
    load = g.node("LoadImage", (40, 80), ["kling_example_start.png", "image"], [],
                  [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 360))
    kling = g.node("KlingImageToVideo", (400, 80),
                   kling_widgets("The camera slowly pushes in while leaves drift in the wind", "kling-v2-5-turbo",
                                 "std", "5"), KLING_INPUTS, KLING_OUTPUTS, size=(400, 600))
    g.link(load, 0, kling, "image")
    add_video_outputs(g, kling, 850, "video/Kling")
    return g.workflow()


def image_to_video_with_sound() -> dict[str, Any]:
    """kling-v2-6 pro with sound on: the VIDEO output (sound kept) saved as is; frames + the audio output
    made into a second video (where an edited picture or sound would go)."""
    g = Graph()
    load = g.node("LoadImage", (40, 80), ["kling_example_start.png", "image"], [],
                  [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 360))
    kling = g.node("KlingImageToVideo", (400, 80),
                   kling_widgets("Leaves rustle in the wind while birds sing nearby", "kling-v2-6", "pro", "5",
                                 sound="on"), KLING_INPUTS, KLING_OUTPUTS, size=(400, 640))
    direct = g.node("SaveVideo", (1300, 80), ["video/Kling_sound", "auto", "auto"], [("video", "VIDEO")],
                    size=(420, 400), title="Save the video (with its sound)")
    g.link(load, 0, kling, "image")
    g.link(kling, 2, direct, "video")
    add_video_outputs(g, kling, 850, "video/Kling_sound_rebuilt")
    create = next(n for n in g.nodes if n["type"] == "CreateVideo")
    g.link(kling, 5, create["id"], "audio")
    return g.workflow()


def turbo_image_to_video() -> dict[str, Any]:
    """kling-3.0-turbo (Kling's new API, an API key only): the start frame only (no end frame), 720p, 5 s;
    always with sound (it has no sound switch: the hidden sound widget keeps a new node's "off", the only choice
    the widget plan offers it), no negative prompt and no cfg_scale on the new API (left empty / hidden). The
    VIDEO output (its sound kept) saved as is, the frames previewed."""
    g = Graph()
    load = g.node("LoadImage", (40, 80), ["kling_example_start.png", "image"], [],
                  [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 360))
    kling = g.node("KlingImageToVideo", (400, 80),
                   kling_widgets("The sun climbs over the hills while a light wind hums through the grass",
                                 "kling-3.0-turbo", "std", "5", sound="off", resolution="720p", negative_prompt=""),
                   KLING_INPUTS, KLING_OUTPUTS, size=(400, 600), title="Kling Image to Video (3.0 Turbo)")
    save = g.node("SaveVideo", (850, 80), ["video/Kling_turbo", "auto", "auto"], [("video", "VIDEO")],
                  size=(420, 400), title="Save the video (with its sound)")
    preview = g.node("PreviewImage", (850, 520), [], [("images", "IMAGE")], size=(270, 260))
    g.link(load, 0, kling, "image")
    g.link(kling, 2, save, "video")
    g.link(kling, 0, preview, "images")
    return g.workflow()


def text_to_video() -> dict[str, Any]:
    """Kling Text to Video: widgets prompt, negative_prompt, model_name, mode, duration, aspect_ratio,
    cfg_scale, seed, (seed control), sound, external_task_id, callback_url, timeout, resolution, storyboard."""
    g = Graph()
    kling = g.node("KlingTextToVideo", (40, 80),
                   ["A paper boat drifts down a rain-soaked street, close-up, soft light", "blurry, distorted",
                    "kling-v2-5-turbo", "std", "5", "16:9", 0.5, 0, "fixed", "off", "", "", 1800, "720p", ""],
                   [], KLING_OUTPUTS, size=(400, 560))
    add_video_outputs(g, kling, 500, "video/Kling_text")
    return g.workflow()


def start_end_frame() -> dict[str, Any]:
    g = Graph()
    start = g.node("LoadImage", (40, 40), ["kling_example_start.png", "image"], [],
                   [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 330), title="Start frame")
    end = g.node("LoadImage", (40, 400), ["kling_example_end.png", "image"], [],
                 [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 330), title="End frame")
    kling = g.node("KlingImageToVideo", (400, 80),
                   kling_widgets("A smooth transition from the first scene to the second", "kling-v2-5-turbo",
                                 "pro", "10"), KLING_INPUTS, KLING_OUTPUTS, size=(400, 600))
    g.link(start, 0, kling, "image")
    g.link(end, 0, kling, "image_tail")
    add_video_outputs(g, kling, 850, "video/Kling_start_end")
    return g.workflow()


def sd15_picture(g: Graph) -> int:
    """An SD1.5 picture made in the graph (checkpoint, prompts, sampler, decode); the VAEDecode node's id."""
    ckpt = g.node("CheckpointLoaderSimple", (20, 120), ["v1-5-pruned-emaonly.safetensors"], [],
                  [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")], size=(320, 100))
    pos = g.node("CLIPTextEncode", (370, 40), ["a lighthouse on a cliff at sunset, dramatic clouds, photo"],
                 [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")], size=(400, 160))
    neg = g.node("CLIPTextEncode", (370, 240), ["blurry, low quality"], [("clip", "CLIP")],
                 [("CONDITIONING", "CONDITIONING")], size=(400, 160))
    latent = g.node("EmptyLatentImage", (370, 440), [768, 512, 1], [], [("LATENT", "LATENT")], size=(320, 110))
    sampler = g.node("KSampler", (800, 80), [0, "randomize", 20, 7.0, "euler", "normal", 1.0],
                     [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                      ("latent_image", "LATENT")], [("LATENT", "LATENT")], size=(320, 270))
    decode = g.node("VAEDecode", (800, 400), [], [("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")],
                    size=(210, 50))
    g.link(ckpt, 0, sampler, "model")
    g.link(ckpt, 1, pos, "clip")
    g.link(ckpt, 1, neg, "clip")
    g.link(pos, 0, sampler, "positive")
    g.link(neg, 0, sampler, "negative")
    g.link(latent, 0, sampler, "latent_image")
    g.link(sampler, 0, decode, "samples")
    g.link(ckpt, 2, decode, "vae")
    return decode


def text_to_image_to_video() -> dict[str, Any]:
    g = Graph()
    decode = sd15_picture(g)
    kling = g.node("KlingImageToVideo", (1150, 80),
                   kling_widgets("Waves crash below as the clouds roll past", "kling-v2-5-turbo", "std", "5"),
                   KLING_INPUTS, KLING_OUTPUTS, size=(400, 600))
    g.link(decode, 0, kling, "image")
    add_video_outputs(g, kling, 1600, "video/Kling_from_text")
    return g.workflow()


#: The storyboard example's three shots (one ``SECONDS: TEXT`` per line; they add up to its 10 s).
STORYBOARD = ("3: the camera glides toward the lighthouse as waves crash below\n"
              "3: close on the lamp room, the light begins to turn\n"
              "4: wide shot from the sea, the beam sweeps over the clouds at dusk")


def text_to_image_to_storyboard() -> dict[str, Any]:
    """An SD1.5 picture, then a three-shot kling-v3 storyboard at 1080p (mode pro), saved as a video."""
    g = Graph()
    decode = sd15_picture(g)
    kling = g.node("KlingImageToVideo", (1150, 80),
                   kling_widgets("", "kling-v3", "pro", "10", negative_prompt="", storyboard=STORYBOARD),
                   KLING_INPUTS, KLING_OUTPUTS, size=(420, 700))
    save = g.node("SaveVideo", (1620, 80), ["video/Kling_storyboard", "auto", "auto"], [("video", "VIDEO")], [],
                  size=(320, 300))
    g.link(decode, 0, kling, "image")
    g.link(kling, 2, save, "video")
    return g.workflow()


def camera_control() -> dict[str, Any]:
    g = Graph()
    load = g.node("LoadImage", (40, 80), ["kling_example_start.png", "image"], [],
                  [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 360))
    # type, horizontal, vertical, pan, tilt, roll, zoom: a slow push in (zoom < 0 narrows the view)
    camera = g.node("KlingCameraControl", (40, 480), ["simple", 0, 0, 0, 0, 0, -5], [],
                    [("camera_control", "KLING_CAMERA_CONTROL")], size=(320, 230))
    kling = g.node("KlingImageToVideo", (400, 80),
                   kling_widgets("The camera pushes in towards the sun over the hills", "kling-v1-5", "pro", "5"),
                   KLING_INPUTS, KLING_OUTPUTS, size=(400, 640))
    g.link(load, 0, kling, "image")
    g.link(camera, 0, kling, "camera_control")
    add_video_outputs(g, kling, 850, "video/Kling_camera")
    return g.workflow()


#: The sun of kling_example_start.png (640x384) rises along this path (start image pixels, top-left origin).
SUN_PATH = [[160, 250], [250, 170], [360, 110], [480, 80]]


def motion_brush() -> dict[str, Any]:
    g = Graph()
    load = g.node("LoadImage", (40, 80), ["kling_example_start.png", "image"], [],
                  [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 360))
    # dynamic mask 1: the sun (the only bright-green pixels); static mask: the dark hills
    green = g.node("ImageToMask", (40, 480), ["green"], [("image", "IMAGE")], [("MASK", "MASK")], size=(250, 60),
                   title="Sun: green channel")
    sun = g.node("ThresholdMask", (40, 580), [0.85], [("mask", "MASK")], [("MASK", "MASK")], size=(250, 60),
                 title="Sun mask")
    blue = g.node("ImageToMask", (40, 680), ["blue"], [("image", "IMAGE")], [("MASK", "MASK")], size=(250, 60),
                  title="Sky: blue channel")
    sky = g.node("ThresholdMask", (40, 780), [0.35], [("mask", "MASK")], [("MASK", "MASK")], size=(250, 60),
                 title="Sky mask")
    hills = g.node("InvertMask", (40, 880), [], [("mask", "MASK")], [("MASK", "MASK")], size=(250, 50),
                   title="Hills mask (static)")
    brush = g.node("KlingMotionBrush", (330, 480), [json.dumps([SUN_PATH])],
                   [("static_mask", "MASK")] + [(f"dynamic_mask_{i}", "MASK") for i in range(1, 7)],
                   [("motion_brush", "KLING_MOTION_BRUSH")], size=(420, 560))
    kling = g.node("KlingImageToVideo", (800, 80),
                   kling_widgets("The sun rises slowly over the still hills", "kling-v1-5", "pro", "5"),
                   KLING_INPUTS, KLING_OUTPUTS, size=(400, 640))
    g.link(load, 0, green, "image")
    g.link(green, 0, sun, "mask")
    g.link(load, 0, blue, "image")
    g.link(blue, 0, sky, "mask")
    g.link(sky, 0, hills, "mask")
    g.link(hills, 0, brush, "static_mask")
    g.link(sun, 0, brush, "dynamic_mask_1")
    g.link(load, 0, kling, "image")
    g.link(brush, 0, kling, "motion_brush")
    add_video_outputs(g, kling, 1250, "video/Kling_motion_brush")
    return g.workflow()


def load_image(g: Graph, name: str, pos: tuple[int, int], title: str) -> int:
    return g.node("LoadImage", pos, [name, "image"], [], [("IMAGE", "IMAGE"), ("MASK", "MASK")], size=(320, 330),
                  title=title)


def multi_image_to_video() -> dict[str, Any]:
    """Kling Multi-Image to Video: widgets prompt, negative_prompt, model_name, mode, duration,
    aspect_ratio, seed, (seed control), external_task_id, callback_url, timeout; sockets image_1..4."""
    g = Graph()
    first = load_image(g, "kling_example_start.png", (40, 40), "Reference 1")
    second = load_image(g, "kling_example_end.png", (40, 400), "Reference 2")
    kling = g.node("KlingMultiImageToVideo", (400, 80),
                   ["The scene of the first picture slowly turns into the second, gentle camera drift",
                    "blurry, distorted", "kling-v1-6", "std", "5", "16:9", 0, "fixed", "", "", 1800],
                   [("image_1", "IMAGE"), ("image_2", "IMAGE"), ("image_3", "IMAGE"), ("image_4", "IMAGE")],
                   KLING_OUTPUTS, size=(400, 560))
    g.link(first, 0, kling, "image_1")
    g.link(second, 0, kling, "image_2")
    add_video_outputs(g, kling, 850, "video/Kling_multi_image")
    return g.workflow()


def video_extend() -> dict[str, Any]:
    """Image to video with kling-v1-6 (a model Kling extends), its video_id into Kling Video Extend:
    widgets source_video_id (shown as video_id), prompt, negative_prompt, cfg_scale, seed, (seed control), external_task_id,
    callback_url, timeout, concurrency."""
    g = Graph()
    load = load_image(g, "kling_example_start.png", (40, 80), "Start frame")
    kling = g.node("KlingImageToVideo", (400, 80),
                   kling_widgets("Leaves drift in the wind", "kling-v1-6", "std", "5"), KLING_INPUTS, KLING_OUTPUTS,
                   size=(400, 600))
    extend = g.node("KlingVideoExtend", (850, 80),
                    ["", "The camera keeps pushing in as the wind grows stronger", "blurry, distorted", 0.5, 0,
                     "fixed", "", "", 1800, 2],
                    [("source_video_id", "STRING")], KLING_OUTPUTS, size=(400, 480))
    g.link(load, 0, kling, "image")
    g.link(kling, 4, extend, "source_video_id")
    add_video_outputs(g, extend, 1300, "video/Kling_extended")
    return g.workflow()


WORKFLOWS = {
    "kling_image_to_video": image_to_video,
    "kling_start_end_frame": start_end_frame,
    "kling_image_to_video_sound": image_to_video_with_sound,
    # "sound" in the name: tests/test_audio_host.py runs every *sound* example and checks its saved sound
    "kling_turbo_image_to_video_sound": turbo_image_to_video,
    "kling_text_to_video": text_to_video,
    "kling_text_to_image_to_video": text_to_image_to_video,
    "kling_storyboard": text_to_image_to_storyboard,
    "kling_camera_control": camera_control,
    "kling_motion_brush": motion_brush,
    "kling_multi_image_to_video": multi_image_to_video,
    "kling_video_extend": video_extend,
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in WORKFLOWS.items():
        (OUT / f"{name}.json").write_text(json.dumps(build(), indent=2) + "\n", encoding="utf-8")
        print(OUT / f"{name}.json")


if __name__ == "__main__":
    main()
