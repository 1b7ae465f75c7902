"""Checks real server API answers against docs/openapi.yaml.

Usage: openapi_check.py OPENAPI_YAML ANSWERS_JSON

ANSWERS_JSON is a list of {"method", "path", "status", "body"} recorded by
tests/api.rs from a running server, `path` being the template of
openapi.yaml (e.g. /api/v1/channels/{channel}/history). Checks that the
description is a valid OpenAPI 3.1 document, that every answer's status is
described for its operation, that its body validates against the described
schema (JSON Schema 2020-12, $refs resolved in the document), and that every
operation of the description was exercised. Prints one line per failure and
exits 1 if there was any; deterministic (no generated requests).
"""

import json
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:websocket-app:openapi"


def pointer(*parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def main(spec_path, answers_path):
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    with open(answers_path) as f:
        answers = json.load(f)
    failures = []
    try:
        from openapi_spec_validator import validate

        validate(spec)
    except ImportError:
        pass
    except Exception as e:  # the description itself is invalid
        failures.append(f"docs/openapi.yaml is not valid OpenAPI: {e}")
    registry = Registry().with_resource(
        BASE, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    seen = set()
    for a in answers:
        method, path, status = a["method"].lower(), a["path"], str(a["status"])
        where = f"{a['method']} {path} {status}"
        op = spec.get("paths", {}).get(path, {}).get(method)
        if op is None:
            failures.append(f"{where}: operation not described")
            continue
        seen.add((path, method))
        response = op.get("responses", {}).get(status)
        if response is None:
            failures.append(f"{where}: status not described")
            continue
        if "$ref" in response:
            ref = response["$ref"].split("/")[1:]
            base = pointer(*ref, "content", "application/json", "schema")
        else:
            base = pointer("paths", path, method, "responses", status, "content", "application/json", "schema")
        validator = Draft202012Validator({"$ref": BASE + base}, registry=registry)
        errors = sorted(validator.iter_errors(a["body"]), key=lambda e: list(e.path))
        for e in errors:
            failures.append(f"{where}: {e.message} at {list(e.absolute_path)} in {json.dumps(a['body'])[:300]}")
    for path, item in spec.get("paths", {}).items():
        for method in item:
            if (path, method) not in seen:
                failures.append(f"{method.upper()} {path}: described but not exercised")
    for f in failures:
        print(f)
    print(f"checked {len(answers)} answers of {len(seen)} operations: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
