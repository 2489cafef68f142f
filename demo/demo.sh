#!/usr/bin/env bash
# `make demo`: a tour on a throw-away embedded default in .fabric-demo/: a user, a pool, a
# project with quotas, an allocation admitted and one refused, real Ray jobs through the
# fabric CLI and through the real `ray job submit` against Fabric's door, built-in job templates
# (XGBoost on Ray Train workers among them), a project's own template, a pipeline, a model
# served on Ray Serve, a tiny LLM served on vLLM and streamed through the `openai` client,
# usage (resource-hours and tokens), the audit trail.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fabric="$root/.venv/bin/fabric"
python="$root/.venv/bin/python"
port="${FABRIC_PORT:-8765}"

# Nothing from the caller's FABRIC_ settings (a real database URL, a token) may leak in.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^FABRIC_' || true)
export FABRIC_HOME="$root/.fabric-demo"
export FABRIC_HOST=127.0.0.1
export FABRIC_PORT="$port"
export FABRIC_URL="http://127.0.0.1:$port"
# The demo's own Ray head: ports apart from a `fabric up` of the user's, and a short folder
# (Ray's socket paths must stay short).
export FABRIC_RAY_GCS_PORT=26479 FABRIC_RAY_DASHBOARD_PORT=28365
export FABRIC_RAY_CLIENT_PORT=20011 FABRIC_RAY_DASHBOARD_AGENT_PORT=20012
export FABRIC_RAY_SERVE_PORT=28100
FABRIC_RAY_FOLDER="$(mktemp -d /tmp/fabric-demo-ray-XXXXXX)"
export FABRIC_RAY_FOLDER
export FABRIC_ADMIN_USER=admin
alice_home="$FABRIC_HOME/alice"

new_password() { "$python" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
export FABRIC_ADMIN_PASSWORD
FABRIC_ADMIN_PASSWORD="$(new_password)"
alice_password="$(new_password)"

step() { printf '\n== %s\n' "$*"; }
# Echo a command as one would type it (arguments with spaces in quotes), then run it.
echo_command() {
    local line="$1" arg
    shift
    for arg in "$@"; do
        [[ $arg == *" "* ]] && arg="\"$arg\""
        line+=" $arg"
    done
    printf '%s\n' "$line"
}
as_admin() { echo_command '$ fabric' "$@"; "$fabric" "$@"; }
as_alice() { echo_command '(alice) $ fabric' "$@"; FABRIC_HOME="$alice_home" "$fabric" "$@"; }
ready() { "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$FABRIC_URL/readyz" 2>/dev/null; }

if ready; then
    echo "something already answers on port $port; set FABRIC_PORT to a free port" >&2
    exit 1
fi
rm -rf "$FABRIC_HOME"
mkdir -p "$alice_home"

step "Bring up the embedded default: a local Ray head and the Fabric server (home: .fabric-demo/)"
trap '"$fabric" down >/dev/null 2>&1 || true; rm -rf "$FABRIC_RAY_FOLDER"' EXIT
as_admin up
as_admin status

step "Log in as the admin (password from stdin, never on the command line)"
printf '%s\n' "$FABRIC_ADMIN_PASSWORD" | as_admin login --username admin --password-stdin
as_admin whoami

step "Create the user alice"
printf '%s\n' "$alice_password" |
    as_admin user create alice --email alice@example.org --password-stdin

step "Create the pool gpu-a100: nodes with 8 GPUs"
as_admin pool create gpu-a100 --resource gpu=8 --selector accelerator=a100 \
    --description "A100 nodes"

step "Create the project vision, add alice, let it use gpu-a100"
as_admin project create vision --description "Computer vision"
as_admin project member add vision alice --role member
as_admin pool grant gpu-a100 vision
as_admin project member list vision

step "Quotas: vision holds at most 2 GPUs at once; alice asks for at most 1 per request"
as_admin quota set vision gpu 2 --kind concurrent
as_admin quota set vision gpu 1 --kind single --user alice

step "Log in as alice (her own FABRIC_HOME, so both logins stay saved)"
printf '%s\n' "$alice_password" | as_alice login --username alice --password-stdin

step "alice asks for 1 GPU on gpu-a100: admitted"
as_alice allocation create vision --resource gpu=1 --pool gpu-a100 --purpose "resnet50 fine-tune"
allocation_id="$(FABRIC_HOME="$alice_home" "$fabric" allocation list vision --state active --json |
    "$python" -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"

step "alice asks for 2 GPUs: refused by her quota"
# The refusal is what this step shows: the command exits 1 and the tour goes on.
as_alice allocation create vision --resource gpu=2 --pool gpu-a100 2>&1 || true

step "What vision uses of its quotas now"
as_alice quota show vision

step "alice releases her allocation"
as_alice allocation release vision "$allocation_id"
as_alice allocation list vision

step "alice runs a real Ray job from her code folder: uploaded, admitted against vision's quota, logs followed live"
code="$FABRIC_HOME/code"
mkdir -p "$code"
cat >"$code/train.py" <<'PY'
import os, sys
import ray

ray.init()
print("hello from Ray", ray.__version__, "in project", os.environ["FABRIC_PROJECT"], "via", sys.argv[1])
print("CPUs in the cluster:", ray.cluster_resources().get("CPU"))
PY
as_alice job submit vision --name hello-ray --resource cpu=1 --working-dir "$code" -- \
    python train.py fabric-cli

step "alice uses Ray's own CLI against Fabric's Ray Jobs door, with an API token: same quota, audit, metering"
alice_token="$(FABRIC_HOME="$alice_home" "$fabric" token create laptop --days 1 2>/dev/null)"
door=(--address "$FABRIC_URL/ray/vision" --headers "{\"Authorization\": \"Bearer $alice_token\"}")
printf '%s\n' "(alice) \$ ray job submit --address $FABRIC_URL/ray/vision" \
    "    --headers '{\"Authorization\": \"Bearer fabp_...\"}'" \
    "    --working-dir $code --entrypoint-num-cpus 1 -- python train.py ray-cli"
"$root/.venv/bin/ray" job submit "${door[@]}" --working-dir "$code" --entrypoint-num-cpus 1 -- \
    python train.py ray-cli
printf '%s\n' "(alice) \$ ray job list --address $FABRIC_URL/ray/vision --headers '...'"
"$root/.venv/bin/ray" job list "${door[@]}" | grep -o "submission_id='[0-9]*'\|status=<JobStatus.[A-Z]*: '[A-Z]*'>" | paste - -
as_alice job list vision

step "alice runs built-in templates: a CSV into a dataset, then a random forest on it"
as_alice template list
"$python" -c '
import csv, sys
rows = [(i % 20, (i * 7) % 11, int(i % 20 + (i * 7) % 11 > 14)) for i in range(300)]
with open(sys.argv[1], "w", newline="") as f:
    csv.writer(f).writerows([("x", "z", "label"), *rows])
' "$FABRIC_HOME/points.csv"
as_alice job submit vision --template data-import --param source="$FABRIC_HOME/points.csv" \
    --param name=points
as_alice job submit vision --template random-forest --param target=label \
    --param dataset="$FABRIC_HOME/storage/projects/vision/datasets/points.parquet"

step "alice trains XGBoost on 2 Ray Train workers: the quota counts the driver and both workers"
as_alice job submit vision --template xgboost --resource cpu=0.25 --workers 2 \
    --worker-resource cpu=0.5 --param target=label --param num_boost_round=20 \
    --param dataset="$FABRIC_HOME/storage/projects/vision/datasets/points.parquet"
last_job() { FABRIC_HOME="$alice_home" "$fabric" job list vision --json |
    "$python" -c 'import json, sys; print(max(job["id"] for job in json.load(sys.stdin)))'; }
as_alice job outputs vision "$(last_job)"

step "alice registers her own template from her code folder, and runs it with checked parameters"
cat >"$code/share.py" <<'PY'
import argparse
import pandas as pd
from fabric import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--dataset")
parser.add_argument("--column")
args = parser.parse_args()
share = float(pd.read_parquet(args.dataset)[args.column].mean())
print(f"{args.column}: {share:.1%} of the rows")
runtime.write_outputs(share=share)
PY
cat >"$FABRIC_HOME/share.yaml" <<'YAML'
name: share
command: python share.py
description: the share of rows where a 0/1 column is 1
resources: {cpu: 0.25}
parameters:
  type: object
  properties:
    dataset: {type: string, description: a Parquet dataset}
    column: {type: string, description: a 0/1 column}
  required: [dataset, column]
YAML
as_alice template register vision -f "$FABRIC_HOME/share.yaml" --working-dir "$code"
# A missing parameter is refused before anything runs.
as_alice job submit vision --template vision/share --param dataset=x 2>&1 || true
as_alice job submit vision --template vision/share --param column=label \
    --param dataset="$FABRIC_HOME/storage/projects/vision/datasets/points.parquet"
as_alice job outputs vision "$(last_job)"

step "alice builds a pipeline: import, split, XGBoost and a random forest in parallel, evaluate both, register the forest"
cat >"$FABRIC_HOME/churn.yaml" <<YAML
name: churn
description: a CSV to a registered model, outputs passed by reference
globals: {target: label}
tasks:
  raw:
    template: data-import
    params: {source: $FABRIC_HOME/points.csv, name: churn-raw}
    resources: {cpu: 0.25}
  split:
    template: data-process
    after: [raw]
    params:
      dataset: "{{ tasks.raw.outputs.dataset_uri }}"
      name: churn-split
      test_fraction: 0.25
    resources: {cpu: 0.25}
    workers: 1
    worker_resources: {cpu: 0.25}
  boost:
    template: xgboost
    after: [split]
    params: {dataset: "{{ tasks.split.outputs.train_uri }}", target: "{{ globals.target }}", num_boost_round: 20}
    resources: {cpu: 0.25}
    worker_resources: {cpu: 0.25}
  forest:
    template: random-forest
    after: [split]
    params: {dataset: "{{ tasks.split.outputs.train_uri }}", target: "{{ globals.target }}"}
    resources: {cpu: 0.5}
  evaluate_boost:
    template: model-evaluate
    after: [boost]
    params: {model: "{{ tasks.boost.outputs.model_uri }}", dataset: "{{ tasks.split.outputs.test_uri }}", target: "{{ globals.target }}"}
    resources: {cpu: 0.25}
  evaluate_forest:
    template: model-evaluate
    after: [forest]
    params: {model: "{{ tasks.forest.outputs.model_uri }}", dataset: "{{ tasks.split.outputs.test_uri }}", target: "{{ globals.target }}"}
    resources: {cpu: 0.25}
  register:
    template: model-register
    after: [evaluate_forest]
    params: {model: "{{ tasks.forest.outputs.model_uri }}", name: churn}
YAML
as_alice pipeline apply vision -f "$FABRIC_HOME/churn.yaml"
as_alice pipeline show vision churn
# A reference to a task that is not upstream is refused before anything runs.
sed 's/after: \[forest\]/after: [boost]/' "$FABRIC_HOME/churn.yaml" >"$FABRIC_HOME/churn-bad.yaml"
as_alice pipeline apply vision -f "$FABRIC_HOME/churn-bad.yaml" 2>&1 || true

step "alice runs it and follows each task; light tasks run on the warm runner, Train tasks as Ray Jobs"
as_alice pipeline run vision churn --follow
FABRIC_HOME="$alice_home" "$fabric" pipeline runs vision churn --json | "$python" -c '
import json, sys
run = json.load(sys.stdin)[0]
for task in run["tasks"]:
    outputs = task["outputs"] or {}
    shown = outputs.get("metrics") or {k: outputs[k] for k in ("rows", "model_version") if k in outputs}
    name, status = task["task"], task["status"]
    print(f"{name:16} {status:10} {json.dumps(shown)}")
'

step "The pipeline registered the forest as version 1 of the model churn; alice registers the boosted trees as version 2"
as_alice model list vision
best="$(FABRIC_HOME="$alice_home" "$fabric" pipeline runs vision churn --json | "$python" -c '
import json, sys
tasks = {t["task"]: t for t in json.load(sys.stdin)[0]["tasks"]}
print(tasks["boost"]["job_id"], tasks["evaluate_boost"]["outputs"]["metrics"]["accuracy"],
      tasks["evaluate_forest"]["outputs"]["metrics"]["accuracy"])
')"
read -r boost_job boost_accuracy forest_accuracy <<<"$best"
as_alice model register vision churn "$boost_job" --description "XGBoost from the churn pipeline"
as_alice model show vision churn
# The better of the two on the held-out rows goes to production.
production="$("$python" -c 'import sys; print(2 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' \
    "$boost_accuracy" "$forest_accuracy")"
canary=$((3 - production))
echo "held-out accuracy: forest $forest_accuracy, boosted trees $boost_accuracy"
as_alice model alias vision churn production "$production"
as_alice model show vision churn production

step "alice deploys churn@production on Ray Serve: no serving code, the registry says how to load it"
as_alice endpoint deploy vision churn --model churn@production --cpu 0.25
as_alice endpoint call vision churn --data '{"instances": [{"x": 3, "z": 4}, {"x": 18, "z": 9}]}'
echo '(alice) $ curl -H "Authorization: Bearer fabp_..." '"$FABRIC_URL"'/serve/vision/churn/predict -d '"'"'{"instance": {"x": 18, "z": 9}}'"'"
"$python" -c '
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=json.dumps({"instance": {"x": 18, "z": 9}}).encode(),
    headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
with urllib.request.urlopen(request) as answer:
    print("HTTP", answer.status, "x-fabric-model-version:", answer.headers["x-fabric-model-version"])
    print(answer.read().decode())
' "$FABRIC_URL/serve/vision/churn/predict" "$alice_token"

step "A canary: 20% of the calls go to the other version"
as_alice endpoint traffic vision churn "$production=80" "$canary=20"
"$python" -c '
import json, sys, urllib.request
from collections import Counter
seen = Counter()
for _ in range(100):
    request = urllib.request.Request(sys.argv[1], data=b"{\"instance\": {\"x\": 5, \"z\": 5}}",
        headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        seen[answer.headers["x-fabric-model-version"]] += 1
print("100 calls answered by:", dict(sorted(seen.items())))
' "$FABRIC_URL/serve/vision/churn/predict" "$alice_token"
as_alice endpoint show vision churn

step "Roll back to the previous revision in one call; every change is a revision"
as_alice endpoint rollback vision churn
as_alice endpoint revisions vision churn
as_alice endpoint delete vision churn

step "alice makes a tiny LLM with the llm-tiny template (random weights, a tokenizer trained here) and registers it"
as_alice job submit vision --template llm-tiny
as_alice model register vision tiny "$(last_job)" --framework llm --description "llm-tiny, for the tour"

step "alice serves it on vLLM through Ray Serve (its own environment, .venv-llm), with a key for her laptop"
as_alice endpoint deploy vision chat --model tiny --kind llm --cpu 0.5 --max-model-len 256 \
    --dtype float32 --timeout 600
chat_key="$(FABRIC_HOME="$alice_home" "$fabric" endpoint key create vision chat laptop 2>/dev/null |
    grep -o 'fabe_[A-Za-z0-9_-]*')"

step "alice streams a chat answer with the openai client, pointed at Fabric (the words are noise: the weights are random)"
cat <<PY
(alice) \$ python
>>> from openai import OpenAI
>>> client = OpenAI(base_url="$FABRIC_URL/serve/vision/chat/v1", api_key="fabe_...")
>>> for chunk in client.chat.completions.create(model="tiny", messages=[...], stream=True): ...
PY
"$python" -c '
import sys, time
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2])
started, first, chunks = time.perf_counter(), None, 0
stream = client.chat.completions.create(model="tiny", max_tokens=24, stream=True,
    stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "Tell me about Ray."}])
for chunk in stream:
    if chunk.choices:
        first = first or time.perf_counter() - started
        chunks += 1
        print(repr(chunk.choices[0].delta.content or ""), end=" ", flush=True)
    elif chunk.usage:
        print(f"\n{chunks} chunks, first after {first * 1000:.0f} ms;",
              f"usage: {chunk.usage.prompt_tokens} prompt + {chunk.usage.completion_tokens} completion tokens")
' "$FABRIC_URL/serve/vision/chat/v1" "$chat_key"

step "The tokens, per endpoint and key, in vision's usage report"
as_alice usage vision --group-by key
as_alice endpoint delete vision chat

step "A GPU job: no node here has a GPU, so it is refused at once, not left PENDING and billed"
# The refusal is what this step shows: the command exits 1 and the tour goes on.
as_alice job submit vision --name waits --resource gpu=1 -- python -c "print('never here')" 2>&1 ||
    true

step "What vision consumed, per user and resource"
as_alice usage vision

step "The project's audit trail"
as_admin audit --project vision

step "Bring it down"
as_admin down
step "Done in ${SECONDS}s"
