"""Train and evaluate any RecBole or recbole-llmemb model, e.g.

    python run_recbole_llmemb.py --model=LLMEmbSASRec --dataset=amazon-beauty
    python run_recbole_llmemb.py --model=SASRec --dataset=ml-100k --epochs=1
"""
import sys

from recbole_llmemb.pipeline.quick_start import main

if __name__ == "__main__":
    sys.exit(main())
