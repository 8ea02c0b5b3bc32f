#!/usr/bin/env bash
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/ds && tar xzf .gpu/beauty.tgz -C /tmp/ds
COMMON="--dataset=amazon-beauty --data_path=/tmp/ds --llm_path=$PWD/.gpu/minilm-bf16 --embedding_cache_dir=/tmp/cache --results_dir=$OUT/runs --show_progress=False --epochs=20 --stopping_step=10 --train_batch_size=1024 --MAX_ITEM_LIST_LENGTH=20"
for norm in center whiten scale; do
  timeout 150 python3 run_recbole_llmemb.py --model=LLMEmbSASRec $COMMON --llm_emb_norm=$norm > $OUT/$norm.log 2>&1
  echo "$norm exit $?"
  grep -a -A4 "best test result" $OUT/$norm.log | tail -4
done
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob(os.environ["OUT"] + "/runs/*.json")):
    r = json.load(open(f)); t = r["test"]
    print(r["model"], r["config"].get("llm_emb_norm"), "ndcg@10", round(t["overall"]["ndcg@10"], 4), "tail", round(t["groups"]["item_tail"]["metrics"]["ndcg@10"], 4),
          "short", round(t["groups"]["user_short"]["metrics"]["ndcg@10"], 4), "best", r["best_valid_epoch"], "s/ep", r["timing"]["epoch_seconds_mean"])
PY
