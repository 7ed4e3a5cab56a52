"""Writes locales/en/nodeDefs.json from the node schemas, as a real ComfyUI serves them (/object_info).

The schemas are the one source of the English names and tooltips (their rule-dependent phrases are
written from the capability table by kling_api/rules/tooltips.py); run this after changing one.
tests/test_widget_plan.py fails while the file differs from what this writes.

    python -m scripts.make_locale      (from the repository root, in the host's venv)
"""
from __future__ import annotations

from kling_devtools.host import ComfyHost
from kling_devtools.node_locale import LOCALE_FILE, locale_from_object_info, locale_text


def main() -> None:
    with ComfyHost(env={"KLING_API_BASE": "http://127.0.0.1:9", "KLING_API_KEY": "locale"}) as host:
        LOCALE_FILE.write_text(locale_text(locale_from_object_info(host.object_info())), encoding="utf-8")
    print(LOCALE_FILE)


if __name__ == "__main__":
    main()
