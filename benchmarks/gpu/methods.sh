#!/usr/bin/env bash
# The three methods on one lent GPU machine, in one invocation: the generators (stage 1, timed
# alone) and the Beauty rows of both protocols, each against the SASRec trained here, on the same
# machine, seed, split and epoch budget (benchmarks/bench_recommenders.py --tag=$TAG).
#
# Carried (git-ignored): .whl/ (recbole, colorlog, texttable, thop, pandas 2.3, pytz, tzdata for
# the machine's Python), .gpu/minilm-bf16 (the packaged MiniLM's weights in bfloat16, the dtype
# the generators use on CUDA anyway: the full-precision file does not fit the transfer) and
# .gpu/beauty.tgz (../shared/datasets/amazon-beauty). Results come back as $OUT/results.tgz.
#
# Rehearse on a CPU: SKIP_INSTALL=1 PY=.venv/bin/python DS=ml-100k DATA=dataset TAG=rehearsal \
#   EXTRA=epochs=1,collab_epochs=1,scft_steps=2,said_steps=2,tslrec_max_length=32 OUT=/tmp/out bash benchmarks/gpu/methods.sh
set -u
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
T0=$(date +%s)
END=$((T0 + ${BUDGET:-470}))   # jobs still running then are stopped; what finished comes back
PY=${PY:-python3}
if [ -z "${SKIP_INSTALL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  mkdir -p /tmp/ds && tar xzf .gpu/beauty.tgz -C /tmp/ds
fi
DS=${DS:-amazon-beauty}
DATA=${DATA:-/tmp/ds}
TAG=${TAG:-h200}
SET="llm_path=$PWD/.gpu/minilm-bf16,results_dir=benchmarks/results/runs-$TAG/${EXTRA:+,$EXTRA}"
D=/tmp/jobs-$TAG; L=benchmarks/results/logs/$TAG
rm -rf "$D" && mkdir -p "$D" "$L"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
$PY -c "import torch, transformers, peft, pandas, numpy, recbole; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"

B=($PY benchmarks/bench_recommenders.py --tag="$TAG" --threads=2 --dataset="$DS" --data_path="$DATA" --set="$SET")

# job NAME [DEPENDENCY ...] -- COMMAND: runs in the background once every dependency succeeded.
# ONLY="name ..." runs only those jobs (the others count as done: their rows must be on the machine).
job() {
  local name=$1; shift
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then touch "$D/$name.ok"; return; fi
  local deps=()
  while [ "$1" != "--" ]; do deps+=("$1"); shift; done
  shift
  (
    for d in "${deps[@]}"; do
      until [ -e "$D/$d.ok" ] || [ -e "$D/$d.fail" ]; do sleep 2; done
      [ -e "$D/$d.ok" ] || { echo "$name: skipped, $d failed"; touch "$D/$name.fail"; exit 0; }
    done
    left=$((END - $(date +%s)))
    [ "$left" -gt 30 ] || { echo "$name: skipped, no time left"; touch "$D/$name.fail"; exit 0; }
    if timeout "$left" "$@" > "$L/job-$name.out" 2>&1; then
      touch "$D/$name.ok"; echo "$(($(date +%s) - T0)) s: $name done"
    else
      touch "$D/$name.fail"; echo "$(($(date +%s) - T0)) s: $name FAILED"; tail -4 "$L/job-$name.out"
    fi
  ) &
}

# the alignment SASRecs (= the SASRec rows) and the generators that need no SASRec
job sasrec -- "${B[@]}" run "SASRec"
job sasrec_paper -- "${B[@]}" run "SASRec paper"
job scft -- "${B[@]}" stage scft
job said -- "${B[@]}" stage said
# like for like: each model without the re-ranker, its checkpoint with it, the extra-epochs controls, the no-text ablation
job tslrec sasrec -- "${B[@]}" stage tslrec
job tslrec_paper sasrec_paper -- "${B[@]}" stage tslrec --protocol=paper
job sasrec_rerank sasrec -- "${B[@]}" run "SASRec + re-ranker"
job sasrec_paper_rerank sasrec_paper -- "${B[@]}" run "SASRec paper + re-ranker"
job sasrec40 sasrec -- "${B[@]}" run "SASRec, 40 epochs"
job llmemb sasrec scft -- "${B[@]}" run "LLMEmbSASRec"
job llmemb_notext sasrec -- "${B[@]}" run "LLMEmbSASRec, no text (random vectors)"
job llmemb_paper sasrec_paper scft -- "${B[@]}" run "LLMEmbSASRec paper"
job sasrec_paper40 sasrec_paper -- "${B[@]}" run "SASRec paper, 40 epochs"
job llmemb_paper_notext sasrec_paper -- "${B[@]}" run "LLMEmbSASRec paper, no text (random vectors)"
job said_row sasrec said -- "${B[@]}" run "SAIDSASRec"
job said_paper sasrec_paper said -- "${B[@]}" run "SAIDSASRec paper"
job tslrec_row tslrec -- "${B[@]}" run "TSLRecSASRec"
job tslrec_paper_row tslrec_paper -- "${B[@]}" run "TSLRecSASRec paper"
job llmemb_rerank llmemb -- "${B[@]}" run "LLMEmbSASRec + re-ranker"
job llmemb_paper_rerank llmemb_paper -- "${B[@]}" run "LLMEmbSASRec paper + re-ranker"
job said_paper_rerank said_paper -- "${B[@]}" run "SAIDSASRec paper + re-ranker"
job tslrec_paper_rerank tslrec_paper_row -- "${B[@]}" run "TSLRecSASRec paper + re-ranker"
# the other backbones against their own baselines
job gru sasrec -- "${B[@]}" run "GRU4Rec"
job bert sasrec -- "${B[@]}" run "BERT4Rec"
job llmemb_gru sasrec scft gru -- "${B[@]}" run "LLMEmbGRU4Rec"
job llmemb_bert sasrec scft bert -- "${B[@]}" run "LLMEmbBERT4Rec"
job gru40 gru -- "${B[@]}" run "GRU4Rec, 40 epochs"
job bert40 bert -- "${B[@]}" run "BERT4Rec, 40 epochs"
job llmemb_gru_notext sasrec gru -- "${B[@]}" run "LLMEmbGRU4Rec, no text (random vectors)"
job llmemb_bert_notext sasrec bert -- "${B[@]}" run "LLMEmbBERT4Rec, no text (random vectors)"
job said_paper_notext sasrec_paper -- "${B[@]}" run "SAIDSASRec paper, no text (random vectors)"
for base in gru bert; do
  b=$([ $base = gru ] && echo GRU4Rec || echo BERT4Rec)
  job said_$base sasrec said $base -- "${B[@]}" run "SAID$b"
  job tslrec_$base tslrec $base -- "${B[@]}" run "TSLRec$b"
  job said_${base}_notext sasrec $base -- "${B[@]}" run "SAID$b, no text (random vectors)"
done
wait
pkill -f run_recbole_llmemb 2>/dev/null; pkill -f recbole_llmemb 2>/dev/null
echo "$(($(date +%s) - T0)) s: all jobs ended"
mkdir -p "$OUT"
tar czf "$OUT/results.tgz" benchmarks/results/rows-$TAG benchmarks/results/runs-$TAG "$L" \
  $(ls llmemb_cache/"$DS"/*/meta.json 2>/dev/null) 2>/dev/null
ls -la "$OUT"
