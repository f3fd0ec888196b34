"""Parses answers with the `marathon` client's models (0.13.0), which refuse
keys they do not know. Reads a JSON list of {"model": "app"|"group", "json"}
on stdin; exits non-zero naming the first answer refused."""

import json
import sys

from marathon.models import MarathonApp, MarathonGroup

MODELS = {"app": MarathonApp, "group": MarathonGroup}

for i, item in enumerate(json.load(sys.stdin)):
    try:
        MODELS[item["model"]].from_json(item["json"])
    except Exception as error:
        sys.exit(f"item {i} ({item['model']}): {error!r}\n{json.dumps(item['json'])}")
print("parsed", i + 1)
