#!/usr/bin/env bash
# GPU check of the language-model stages and the pipeline (run through the device tool).
set -o pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/ds && tar xzf .gpu/beauty.tgz -C /tmp/ds
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, peft, pandas, numpy; print('torch', torch.__version__, 'tf', transformers.__version__, 'peft', peft.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__, torch.cuda.is_available())"
echo "== generator tests on cuda (tiny LLaMA paths)"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_generator.py -k "llama or decoder or pca or atomic or truncated" 2>&1 | grep -a "passed\|failed\|FAILED\|Error" | tail -12
COMMON="--dataset=amazon-beauty --data_path=/tmp/ds --llm_path=$PWD/.gpu/minilm-bf16 --embedding_cache_dir=/tmp/cache --results_dir=$OUT/runs --show_progress=False"
echo "== stage 1 on cuda: SCFT (150 steps) + extraction of 12,101 Beauty items, then the store"
/usr/bin/time -f "wall %e s, peak %M KiB" python3 -m recbole_llmemb.pipeline.generate --method=scft $COMMON 2>&1 | tr "\r" "\n" | grep -a "SCFT:\|built\|wall" | grep -v "it/s\|step/s\|%|" | tail -4
/usr/bin/time -f "wall %e s" python3 -m recbole_llmemb.pipeline.generate --method=scft $COMMON 2>&1 | tail -2
echo "== pipeline on cuda: LLMEmbSASRec (alignment SASRec first = SASRec baseline), 30 epochs"
timeout 330 python3 run_recbole_llmemb.py --model=LLMEmbSASRec $COMMON --epochs=30 --stopping_step=10 --train_batch_size=1024 --MAX_ITEM_LIST_LENGTH=20 > $OUT/pipeline.log 2>&1
echo "pipeline exit $?"
grep -a "stage \|best test\|results file" $OUT/pipeline.log | tail -12
grep -a -A8 "best test result" $OUT/pipeline.log | tail -20
