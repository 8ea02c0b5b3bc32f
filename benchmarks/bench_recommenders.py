"""Baselines against the plugin's models on Amazon Beauty: one row per named run, both protocols.

    .venv/bin/python benchmarks/bench_recommenders.py run [ROW ...] [--threads=N]   # run rows (default: all missing)
    .venv/bin/python benchmarks/bench_recommenders.py report                         # tables from the rows run

Every row is one process of the project's own command lines, with ``benchmarks/beauty.yaml``
(same seed, split, history length, batch size and epoch budget for every row) plus, for the
paper's protocol, ``props/paper.yaml``. A row's record (``benchmarks/results/rows/<row>.json``)
keeps its command, wall time, peak memory (``ru_maxrss`` of its process), thread count, the
commit it ran on and its results file; ``report`` writes ``recommenders-<dataset>.md`` / ``.json``
with ratios against the SASRec of the same protocol, and the collapse diagnostics.

The SASRec row of a protocol *is* the alignment SASRec of that protocol's plugin rows (run by
``python -m recbole_llmemb.pipeline.collaborative``, cached), so it runs before them. Rows may run two at a
time with ``--threads=1`` each on a 2-core machine; each record says how it ran.
"""
import argparse
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
ROWS_DIR = os.path.join(ROOT, "benchmarks", "results", "rows")
PROTOCOLS = {"full": ["benchmarks/beauty.yaml"], "paper": ["benchmarks/beauty.yaml", "props/paper.yaml"],
             # the full-ranking rows' checkpoints, not retrained, each test target ranked against 100 sampled items
             "full, checkpoints at uni100": ["benchmarks/beauty.yaml"],
             # item cold start: 10% of the items never seen in training (new_items), full ranking
             "new items": ["benchmarks/beauty.yaml", "benchmarks/new-items.yaml"],
             # the same, the held-out items kept as negatives of the training softmax (the rows run before
             # new_items_negatives existed: that was every run's behaviour then)
             "new items as negatives": ["benchmarks/beauty.yaml", "benchmarks/new-items-as-negatives.yaml"]}

RERANK = "text_blend=0.3,text_blend_gate=tail"  # props/rerank.yaml: the re-ranker chosen on full-ranking validation
#: the re-ranker on tail items only; weight 0.1 chosen on validation (probe_text_fusion --candidates=tail:
#: 0.1 / 0.2 / 0.3 gave 0.0512 / 0.0479 / 0.0438 validation NDCG@10 on the SASRec row's checkpoint)
RERANK_TAIL_ITEMS = "text_blend=0.1,text_blend_gate=tail_items"
RERANK_PAPER = "text_blend=0.3,text_blend_gate=none"  # under the paper's protocol validation prefers every user alike
#: the text mixture's share and temperature, chosen on validation by probe_text_fusion --scale=mixture on the
#: SASRec row's checkpoint (benchmarks/results/probes/text_mixture.json)
TEXT_MIXTURE = "text_mixture=0.5,text_mixture_tau=0.05"
#: the same mixture after training, as a re-ranker of any model
RERANK_MIXTURE = "text_blend=0.5,text_blend_gate=none,text_blend_mode=mixture,text_mixture_tau=0.05"
#: the re-ranker's share chosen on validation in the package's own form of the mixture (the model's softmax
#: over every item; probe_text_fusion --own_over=all, benchmarks/results/probes/text_mixture.json): 0.3 under
#: full ranking; under the paper's protocol (text_mixture_paper.json) 0.03 (a BPR model's softmax over every item
#: sits on the user's own input items, which are never among the sampled candidates)
RERANK_MIXTURE_03 = RERANK_MIXTURE.replace("text_blend=0.5", "text_blend=0.3")
RERANK_MIXTURE_PAPER = RERANK_MIXTURE.replace("text_blend=0.5", "text_blend=0.03")
#: the mixture whose model part covers only the items outside the user's input (text_mixture_over: new; the
#: probe's own form, probe_text_fusion --own_over=rest): under the paper's protocol validation picks share 0.5
#: (0.3749 / 0.3784 / 0.3766 at 0.3 / 0.5 / 0.7 on the SASRec paper row's checkpoint, text_mixture_paper.json)
RERANK_MIXTURE_NEW = RERANK_MIXTURE + ",text_mixture_over=new"
#: a share per user (text_mixture_tail_share): 0.1 for a user none of whose last 3 items is a tail item, 0.7 for one
#: whose last 3 all are, linear between. probe_mixture_gate.py (benchmarks/results/probes/mixture_gate.json) picked,
#: per group of validation users by that tail share, 0.1 / 0.3 / 0.5 at 0 / 1/3 / 2/3 or more: this line through them
RERANK_MIXTURE_TAIL = RERANK_MIXTURE.replace("text_blend=0.5", "text_blend=0.1") + ",text_mixture_tail_share=0.7"
TEXT_MIXTURE_TAIL = "text_mixture=0.1,text_mixture_tau=0.05,text_mixture_tail_share=0.7"
#: label -> (protocol, model, overrides, what the row tests). Every plugin row runs the shipped defaults (no
#: re-ranker) unless its overrides say otherwise; a "+ re-ranker" row evaluates another row's checkpoint.
ROWS = {
    # ---- full ranking: like for like
    "SASRec": ("full", "SASRec", "", "baseline (the alignment SASRec of the plugin rows)"),
    "SASRec + re-ranker": ("full", "SASRec", RERANK + ",eval_checkpoint={ckpt:SASRec}",
                           "the SASRec row's checkpoint re-ranked with the text (props/rerank.yaml; nothing retrained)"),
    "SASRec + re-ranker on tail items": ("full", "SASRec", RERANK_TAIL_ITEMS + ",eval_checkpoint={ckpt:SASRec}",
                                         "the SASRec row's checkpoint, the text term added to tail items only"),
    "SASRec + text mixture": ("full", "SASRec", RERANK_MIXTURE + ",eval_checkpoint={ckpt:SASRec}",
                              "the SASRec row's checkpoint ranked by the text mixture (text_blend_mode=mixture; "
                              "nothing retrained)"),
    "SASRec + text mixture, history masked": ("full", "SASRec", RERANK_MIXTURE + ",mask_history=True,eval_checkpoint={ckpt:SASRec}",
                                              "the SASRec row's checkpoint ranked by the text mixture, input items out of the ranking"),
    "SASRec + text mixture, all-mpnet-base-v2, history masked": (
        "full", "SASRec", "text_blend=0.7,text_blend_gate=none,text_blend_mode=mixture,text_mixture_tau=0.05,"
        "llm_path=all-mpnet-base-v2,mask_history=True,eval_checkpoint={ckpt:SASRec}",
        "the SASRec row's checkpoint ranked by the mixture with all-mpnet-base-v2's plain vectors (share 0.7, tau 0.05: "
        "validation's choice for them, benchmarks/results/probes/text_mixture_mpnet.json), input items out of the ranking"),
    "SASRec + text mixture, SmolLM2-135M, history masked": (
        "full", "SASRec", RERANK_MIXTURE + ",llm_path=SmolLM2-135M,mask_history=True,eval_checkpoint={ckpt:SASRec}",
        "the SASRec row's checkpoint ranked by the mixture with the decoder SmolLM2-135M's plain vectors (share 0.5, "
        "tau 0.05: validation's choice for them in the package's form, benchmarks/results/probes/"
        "text_mixture_smollm2.json), input items out of the ranking"),
    "SASRec + text mixture at 0.3, history masked": (
        "full", "SASRec", RERANK_MIXTURE_03 + ",mask_history=True,eval_checkpoint={ckpt:SASRec}",
        "the SASRec row's checkpoint ranked by the text mixture at share 0.3 (validation's choice in the package's "
        "form of the mixture), input items out of the ranking"),
    "SASRec, 40 epochs + text mixture at 0.3, history masked": (
        "full", "SASRec", RERANK_MIXTURE_03 + ",mask_history=True,eval_checkpoint={ckpt:SASRec, 40 epochs}",
        "the 'SASRec, 40 epochs' row's checkpoint ranked by the text mixture at share 0.3, input items out of the ranking"),
    "LLMEmbSASRec + text mixture at 0.3, history masked": (
        "full", "LLMEmbSASRec", RERANK_MIXTURE_03 + ",mask_history=True,eval_checkpoint={ckpt:LLMEmbSASRec}",
        "the LLMEmbSASRec row's checkpoint ranked by the text mixture at share 0.3, input items out of the ranking"),
    "SASRec + text mixture per user, history masked": (
        "full", "SASRec", RERANK_MIXTURE_TAIL + ",mask_history=True,eval_checkpoint={ckpt:SASRec}",
        "the SASRec row's checkpoint ranked by the text mixture with a share per user (0.1 to 0.7 by the tail items "
        "among the last 3), input items out of the ranking"),
    "LLMEmbSASRec + text mixture per user, history masked": (
        "full", "LLMEmbSASRec", RERANK_MIXTURE_TAIL + ",mask_history=True,eval_checkpoint={ckpt:LLMEmbSASRec}",
        "the LLMEmbSASRec row's checkpoint ranked by the text mixture with a share per user, input items out of the ranking"),
    "LLMEmbSASRec + text mixture, history masked": (
        "full", "LLMEmbSASRec", RERANK_MIXTURE + ",mask_history=True,eval_checkpoint={ckpt:LLMEmbSASRec}",
        "the LLMEmbSASRec row's checkpoint ranked by the text mixture, input items out of the ranking"),
    "SASRec, 40 epochs": ("full", "SASRec", "epochs=40,resume_checkpoint={ckpt:SASRec}",
                          "control for the warm start: the SASRec row trained on for 20 more epochs (resumed), as long "
                          "as a warm-started plugin row trains in all"),
    "LLMEmbSASRec": ("full", "LLMEmbSASRec", "", "the defaults: text-plus-id table warm-started from the SASRec row, "
                     "InfoNCE alignment alpha 0.1, no re-ranker"),
    "LLMEmbSASRec + re-ranker": ("full", "LLMEmbSASRec", RERANK + ",eval_checkpoint={ckpt:LLMEmbSASRec}",
                                 "the LLMEmbSASRec row's checkpoint re-ranked with the text (props/rerank.yaml)"),
    "LLMEmbSASRec + re-ranker on tail items": ("full", "LLMEmbSASRec", RERANK_TAIL_ITEMS + ",eval_checkpoint={ckpt:LLMEmbSASRec}",
                                               "the LLMEmbSASRec row's checkpoint, the text term added to tail items only"),
    "LLMEmbSASRec, no text (random vectors)": ("full", "LLMEmbSASRec", "llm_embedding_method=random",
                                               "the no-text ablation: the defaults' pipeline (warm start, id table, "
                                               "alignment) on standard normal vectors of the LM's width instead of the "
                                               "LM's; no re-ranker"),
    "LLMEmbSASRec, text score": ("full", "LLMEmbSASRec", "text_score=10",
                                 "the defaults plus the text's similarity as a learned term of the scores (start "
                                 "weight 10, plain vectors, last 3 items, gated by their tail share), in training "
                                 "and evaluation"),
    "LLMEmbSASRec, text score on tail items": ("full", "LLMEmbSASRec", "text_score=8,text_blend_gate=tail_items",
                                               "the defaults plus the learned text term on tail items only (start "
                                               "weight 8: the re-ranker's 0.1 in units of the model's score spread, "
                                               "about 79x the cosine's on Beauty)"),
    "LLMEmbSASRec, fixed text score on tail items": ("full", "LLMEmbSASRec",
                                                     "text_score=8,text_blend_gate=tail_items,text_score_trainable=False",
                                                     "the text term on tail items in training and evaluation at a fixed "
                                                     "weight (8: the re-ranker's 0.1 in score units), not learned"),
    "LLMEmbSASRec, fixed text score on tail items, evaluated without it": (
        "full", "LLMEmbSASRec",
        "text_score=0.0001,text_blend_gate=tail_items,text_score_trainable=False,"
        "eval_checkpoint={ckpt:LLMEmbSASRec, fixed text score on tail items}",
        "that row's checkpoint, its text term scaled to nothing at evaluation (weight 0.0001): what the rest of the "
        "model learned beside the term"),
    "LLMEmbSASRec, fixed text score on tail items, evaluated at 16": (
        "full", "LLMEmbSASRec",
        "text_score=16,text_blend_gate=tail_items,text_score_trainable=False,"
        "eval_checkpoint={ckpt:LLMEmbSASRec, fixed text score on tail items}",
        "that row's checkpoint, its text term's weight doubled at evaluation"),
    **{f"LLMEmbSASRec, fixed text score on tail items, evaluated at {w}": (
        "full", "LLMEmbSASRec",
        f"text_score={w},text_blend_gate=tail_items,text_score_trainable=False,"
        "eval_checkpoint={ckpt:LLMEmbSASRec, fixed text score on tail items}",
        f"that row's checkpoint, its text term's weight {w} at evaluation (validation against test: the drift)")
       for w in (4, 12, 24, 32)},
    "SASRec, recent target weights": ("full", "SASRec", "target_weights=recent",
                                      "SASRec with each training target weighted to the popularity mix of the users' "
                                      "last training targets (recbole_llmemb/data/drift.py): later interactions go "
                                      "to rarer items"),
    "LLMEmbSASRec, recent target weights": ("full", "LLMEmbSASRec", "target_weights=recent",
                                            "the defaults with the same target weights (its alignment SASRec too)"),
    "LLMEmbSASRec, fixed text score on tail items, recent target weights": (
        "full", "LLMEmbSASRec", "text_score=8,text_blend_gate=tail_items,text_score_trainable=False,target_weights=recent",
        "the fixed text score on tail items trained towards the recent popularity mix (its alignment SASRec as in "
        "'LLMEmbSASRec, recent target weights'): does the model still train around the term when tail targets weigh more?"),
    "SASRec, hidden 128": ("full", "SASRec", "hidden_size=128",
                           "SASRec at width 128 (item table and hidden state; the default 64), trained as the "
                           "alignment stage so 'LLMEmbSASRec, hidden 128' starts from it: room for more of the text's "
                           "geometry (its top 128 principal components keep 93% of its tail ranking, 64 keep 76%)"),
    "SASRec, hidden 128, 40 epochs": ("full", "SASRec", "hidden_size=128,epochs=40,resume_checkpoint={ckpt:SASRec, hidden 128}",
                                      "control for the warm start at width 128: that row trained on for 20 more epochs"),
    "LLMEmbSASRec, hidden 128": ("full", "LLMEmbSASRec", "hidden_size=128",
                                 "the defaults at width 128 (adapter 384 -> 192 -> 128), warm-started from the "
                                 "'SASRec, hidden 128' row"),
    "LLMEmbSASRec, hidden 128, no text (random vectors)": ("full", "LLMEmbSASRec", "hidden_size=128,llm_embedding_method=random",
                                                           "the no-text control at width 128"),
    "LLMEmbSASRec, text mixture": ("full", "LLMEmbSASRec", TEXT_MIXTURE,
                                   "the defaults plus the text's own next-item distribution mixed with the model's "
                                   "(share 0.5, temperature 0.05; the input items out of the text's part), in training "
                                   "and evaluation"),
    "LLMEmbSASRec, text mixture at 0.3": ("full", "LLMEmbSASRec", TEXT_MIXTURE.replace("text_mixture=0.5", "text_mixture=0.3"),
                                          "'LLMEmbSASRec, text mixture' at the share validation picks for the mixture "
                                          "after training in the package's form (0.3)"),
    "LLMEmbSASRec, text mixture per user": ("full", "LLMEmbSASRec", TEXT_MIXTURE_TAIL,
                                            "'LLMEmbSASRec, text mixture' with a share per user (0.1 to 0.7 by the tail "
                                            "items among the last 3), in training and evaluation"),
    "LLMEmbSASRec, text mixture and own loss": ("full", "LLMEmbSASRec", TEXT_MIXTURE + ",text_mixture_own_loss=1",
                                                "'LLMEmbSASRec, text mixture' with the model's own cross-entropy added "
                                                "to the mixture's in training (weight 1): does the model trained beside "
                                                "the text stay a whole recommender?"),
    "LLMEmbSASRec + text mixture": ("full", "LLMEmbSASRec", RERANK_MIXTURE + ",eval_checkpoint={ckpt:LLMEmbSASRec}",
                                    "the LLMEmbSASRec row's checkpoint ranked by the text mixture (nothing retrained)"),
    "LLMEmbSASRec plain vectors": ("full", "LLMEmbSASRec", "llm_embedding_method=plain",
                                   "the defaults on the packaged MiniLM's vectors without SCFT"),
    "LLMEmbSASRec, principal adapter": ("full", "LLMEmbSASRec", "adapter_mode=principal",
                                        "the defaults with the adapter fixed at the text's top 64 principal "
                                        "components, whitened (never trained): the text part keeps the text's own "
                                        "neighbours, the id offsets learn the rest"),
    "LLMEmbSASRec plain vectors, PCA 128": ("full", "LLMEmbSASRec", "llm_embedding_method=plain,pca_dim=128",
                                            "the plain vectors reduced to their top 128 principal components before "
                                            "the adapter (the official code's PCA, 4096 -> 1536, at MiniLM's scale)"),
    # ---- the language model as the one difference (plain vectors: no SCFT on any of them)
    "LLMEmbSASRec plain vectors, all-mpnet-base-v2": (
        "full", "LLMEmbSASRec", "llm_embedding_method=plain,llm_path=all-mpnet-base-v2",
        "the plain-vectors row with the packaged mpnet (768-d, 110M parameters) in place of MiniLM"),
    "LLMEmbSASRec plain vectors, SmolLM2-135M": (
        "full", "LLMEmbSASRec", "llm_embedding_method=plain,llm_path=SmolLM2-135M",
        "the plain-vectors row with the packaged decoder SmolLM2-135M (LLaMA architecture, 576-d, mean pooling)"),
    "LLMEmbSASRec, all-mpnet-base-v2": (
        "full", "LLMEmbSASRec", "llm_path=all-mpnet-base-v2",
        "the defaults (SCFT, 150 steps of LoRA) on the packaged all-mpnet-base-v2 in place of MiniLM "
        "(stage: bench_recommenders.py stage scft --set=llm_path=all-mpnet-base-v2)"),
    "LLMEmbSASRec, SmolLM2-135M": (
        "full", "LLMEmbSASRec", "llm_path=SmolLM2-135M",
        "the defaults (SCFT, 150 steps of LoRA) on the packaged decoder SmolLM2-135M in place of MiniLM "
        "(stage: bench_recommenders.py stage scft --set=llm_path=SmolLM2-135M)"),
    "LLMEmbSASRec, self-distillation": ("full", "LLMEmbSASRec", "self_distill=0.1",
                                        "the defaults plus LLM-ESR's self-distillation (weight 0.1, 10 users retrieved "
                                        "by the text of their training histories; recbole_llmemb/model/self_distill.py)"),
    "LLMEmbSASRec, id L2 1e-3": ("full", "LLMEmbSASRec", "id_l2=0.001",
                                 "an L2 penalty on the id offsets (a Gaussian prior centred on the text): a rarely "
                                 "seen item's offset shrinks towards its text"),
    "LLMEmbSASRec, id L2 1e-4": ("full", "LLMEmbSASRec", "id_l2=0.0001", "the same penalty, 10 times weaker"),
    "LLMEmbSASRec, head ids": ("full", "LLMEmbSASRec", "id_offsets=head",
                               "id offsets for head items only: a tail item is scored by its adapted text alone"),
    "LLMEmbSASRec, id dropout": ("full", "LLMEmbSASRec", "id_dropout=0.5",
                                 "the defaults with each item's id offset left out of half the training steps: the "
                                 "model must also rank by the text alone (ids kept in evaluation)"),
    "LLMEmbSASRec, LM vectors trained": ("full", "LLMEmbSASRec", "freeze_emb=False",
                                         "the defaults with the SCFT item matrix trained with the model (end to end "
                                         "from the LM vectors on), not frozen"),
    "SAIDSASRec": ("full", "SAIDSASRec", "said_id_init=random", "SAID's vectors (packaged MiniLM frozen, masked-token head, "
                   "10 passes over the items, the paper's random start) through the default RAT, no alignment"),
    "SAIDSASRec + text mixture": ("full", "SAIDSASRec", RERANK_MIXTURE + ",eval_checkpoint={ckpt:SAIDSASRec}",
                                  "the SAIDSASRec row's checkpoint ranked by the text mixture (nothing retrained)"),
    "SAIDSASRec + text mixture, history masked": (
        "full", "SAIDSASRec", RERANK_MIXTURE + ",mask_history=True,eval_checkpoint={ckpt:SAIDSASRec}",
        "the SAIDSASRec row's checkpoint ranked by the text mixture, input items out of the ranking"),
    "SAIDSASRec + text mixture at 0.3, history masked": (
        "full", "SAIDSASRec", RERANK_MIXTURE_03 + ",mask_history=True,eval_checkpoint={ckpt:SAIDSASRec}",
        "the SAIDSASRec row's checkpoint ranked by the text mixture at 0.3 (validation's share in the package's form), "
        "input items out of the ranking"),
    "SAIDSASRec, text start": ("full", "SAIDSASRec", "said_id_init=text",
                               "SAID's stage with the id vectors started from the base model's pooled item-text vectors "
                               "(their top said_id_dim = 64 principal components, unit variance each), else as the SAIDSASRec row"),
    "SAIDSASRec, text start, id export": ("full", "SAIDSASRec", "said_id_init=text,said_export=id",
                                          "the same stage as the row above (stored with both exports), exporting each "
                                          "item's id vector (64-d) instead of the mean of its soft tokens (384-d)"),
    "SAIDSASRec, text start, text only": ("full", "SAIDSASRec", "said_id_init=text,item_id_emb=False",
                                          "SAID's vectors (codes started from the text) in a text-only table: every item "
                                          "scored through its adapted vector, no per-item id rows"),
    "SAIDSASRec, no text (random vectors), text only": ("full", "SAIDSASRec", "llm_embedding_method=random,item_id_emb=False",
                                                        "random vectors in the text-only table (the no-text control of the row above)"),
    "SAIDSASRec, no text (random vectors)": ("full", "SAIDSASRec", "llm_embedding_method=random",
                                             "the no-text control of SAIDSASRec: the same RAT (no alignment) on random vectors"),
    "TSLRecSASRec": ("full", "TSLRecSASRec", "", "TSLRec's vectors (packaged MiniLM, LoRA-tuned 1 epoch on users' shares "
                     "of 16 latent categories of the alignment SASRec's items, histories of 32 tokens an item) "
                     "through the default RAT (no alignment)"),
    "TSLRecSASRec + text mixture at 0.3, history masked": (
        "full", "TSLRecSASRec", RERANK_MIXTURE_03 + ",mask_history=True,eval_checkpoint={ckpt:TSLRecSASRec}",
        "the TSLRecSASRec row's checkpoint ranked by the text mixture at 0.3, input items out of the ranking"),
    "GRU4Rec": ("full", "GRU4Rec", "", "baseline"),
    "GRU4Rec, 40 epochs": ("full", "GRU4Rec", "epochs=40,resume_checkpoint={ckpt:GRU4Rec}",
                           "control for the extra epochs: the GRU4Rec row trained on for 20 more epochs (resumed)"),
    "LLMEmbGRU4Rec": ("full", "LLMEmbGRU4Rec", "", "the defaults (starts from the SASRec row's item table)"),
    "LLMEmbGRU4Rec, no text (random vectors)": ("full", "LLMEmbGRU4Rec", "llm_embedding_method=random",
                                                "the no-text ablation: the same start from the SASRec row's item table "
                                                "and alignment, random vectors instead of the LM's"),
    "SAIDGRU4Rec": ("full", "SAIDGRU4Rec", "said_id_init=random", "SAID's vectors (the repaired stage, as SAIDSASRec's) through the default RAT on "
                    "GRU4Rec (starts from the SASRec row's item table, no alignment)"),
    "TSLRecGRU4Rec": ("full", "TSLRecGRU4Rec", "", "TSLRec's vectors (the repaired stage, as TSLRecSASRec's) through the "
                      "default RAT on GRU4Rec (starts from the SASRec row's item table, no alignment)"),
    "SAIDGRU4Rec, no text (random vectors)": ("full", "SAIDGRU4Rec", "llm_embedding_method=random",
                                              "the no-text control of SAID's and TSLRec's GRU4Rec rows (on random vectors "
                                              "their configs differ only in the model's name): the same start from the "
                                              "SASRec row's item table, no alignment"),
    **{f"{method}BERT4Rec": ("full", f"{method}BERT4Rec", "", f"{method}'s vectors (the repaired stage, as {method}SASRec's) "
                             "through the default RAT on BERT4Rec (starts from the SASRec row's item table, no alignment)")
       for method in ("SAID", "TSLRec")},
    "SAIDBERT4Rec, no text (random vectors)": ("full", "SAIDBERT4Rec", "llm_embedding_method=random",
                                               "the no-text control of SAID's and TSLRec's BERT4Rec rows"),
    "BERT4Rec": ("full", "BERT4Rec", "", "baseline"),
    "BERT4Rec, 40 epochs": ("full", "BERT4Rec", "epochs=40,resume_checkpoint={ckpt:BERT4Rec}",
                            "control for the extra epochs: the BERT4Rec row trained on for 20 more epochs (resumed)"),
    "LLMEmbBERT4Rec": ("full", "LLMEmbBERT4Rec", "", "the defaults (starts from the SASRec row's item table)"),
    "LLMEmbBERT4Rec, no text (random vectors)": ("full", "LLMEmbBERT4Rec", "llm_embedding_method=random",
                                                 "the no-text ablation: the same start from the SASRec row's item table "
                                                 "and alignment, random vectors instead of the LM's"),
    "SASRec @uni100": ("full, checkpoints at uni100", "SASRec", "eval_args={'mode': 'uni100'},eval_checkpoint={ckpt:SASRec}",
                       "the SASRec row's checkpoint"),
    "LLMEmbSASRec @uni100": ("full, checkpoints at uni100", "LLMEmbSASRec",
                             "eval_args={'mode': 'uni100'},eval_checkpoint={ckpt:LLMEmbSASRec}",
                             "the LLMEmbSASRec row's checkpoint"),
    "SASRec, 40 epochs @uni100": ("full, checkpoints at uni100", "SASRec",
                                  "eval_args={'mode': 'uni100'},eval_checkpoint={ckpt:SASRec, 40 epochs}",
                                  "the 'SASRec, 40 epochs' row's checkpoint"),
    "LLMEmbSASRec, no text (random vectors) @uni100": (
        "full, checkpoints at uni100", "LLMEmbSASRec",
        "eval_args={'mode': 'uni100'},eval_checkpoint={ckpt:LLMEmbSASRec, no text (random vectors)}",
        "the no-text control's checkpoint: is the text's gain under the paper protocol its evaluation or its training?"),
    # ---- new items (item cold start), held out of the training softmax too (the default)
    "SASRec, new items": ("new items", "SASRec", "", "baseline (the alignment SASRec of the new-items rows): 10% of the "
                          "items held out of training, out of its softmax too; it has only untrained rows for them"),
    "LLMEmbSASRec, new items": ("new items", "LLMEmbSASRec", "", "the defaults; new items read by their text alone"),
    "LLMEmbSASRec, new items, text only": ("new items", "LLMEmbSASRec", "item_id_emb=False",
                                           "the paper's text-only table (no per-item id rows): every item, new or "
                                           "not, scored through the adapted text alone"),
    "LLMEmbSASRec, new items, fixed text score on tail items": (
        "new items", "LLMEmbSASRec", "text_score=8,text_blend_gate=tail_items,text_score_trainable=False",
        "the text term on tail items (new items among them) at a fixed weight, in training and evaluation"),
    # ---- new items kept as negatives of the training softmax (new_items_negatives; the rows run before it existed)
    **{f"{label} + text mixture{masked}": (
        "new items", label.split(",")[0], RERANK_MIXTURE + (",mask_history=True" if masked else "") + f",eval_checkpoint={{ckpt:{label}}}",
        f"the '{label}' row's checkpoint ranked by the text mixture (new items reach the text's part like any item)"
        + (", input items out of the ranking" if masked else ""))
       for label in ("SASRec, new items", "LLMEmbSASRec, new items") for masked in ("", ", history masked")},
    **{f"{label} + text mixture at 0.3, history masked": (
        "new items", label.split(",")[0], RERANK_MIXTURE_03 + f",mask_history=True,eval_checkpoint={{ckpt:{label}}}",
        f"the '{label}' row's checkpoint ranked by the text mixture at 0.3 (validation's share in the package's form "
        "without new items), input items out of the ranking") for label in ("SASRec, new items", "LLMEmbSASRec, new items")},
    **{f"{label} + text mixture at 0.3, new items at {new}, history masked": (
        "new items", label.split(",")[0],
        RERANK_MIXTURE_03 + f",text_mixture_new_share={new},mask_history=True,eval_checkpoint={{ckpt:{label}}}",
        f"the '{label}' row's checkpoint ranked by the text mixture at 0.3, the new items at their own share {new} "
        "(text_mixture_new_share; validation decides), input items out of the ranking")
       for label in ("SASRec, new items", "LLMEmbSASRec, new items") for new in ("0.5", "0.7", "0.9")},
    "LLMEmbSASRec, new items + text mixture at 0.7": (
        "new items", "LLMEmbSASRec", RERANK_MIXTURE.replace("text_blend=0.5", "text_blend=0.7") + ",eval_checkpoint={ckpt:LLMEmbSASRec, new items}",
        "the same at share 0.7 (0.5 was chosen on validation; this row measures what a larger share does for new items)"),
    "SASRec, new items, history masked": ("new items", "SASRec", "mask_history=True,eval_checkpoint={ckpt:SASRec, new items}",
                                          "the 'SASRec, new items' row's checkpoint, input items out of the ranking"),
    "SASRec, new items as negatives": ("new items as negatives", "SASRec", "", "baseline (the alignment SASRec of the new-items rows): 10% of the "
                          "items held out of training; it has only untrained rows for them"),
    "LLMEmbSASRec, new items as negatives": ("new items as negatives", "LLMEmbSASRec", "", "the defaults; new items read by their text alone"),
    "LLMEmbSASRec, new items as negatives, no text (random vectors)": ("new items as negatives", "LLMEmbSASRec", "llm_embedding_method=random",
                                                          "the no-text control: what the text does for new items"),
    "LLMEmbSASRec, new items as negatives, neighbours' ids": ("new items as negatives", "LLMEmbSASRec",
                                                 "new_item_ids=neighbours,eval_checkpoint={ckpt:LLMEmbSASRec, new items as negatives}",
                                                 "the LLMEmbSASRec new-items checkpoint, each new item given the mean id "
                                                 "offset of its 10 nearest items by text (evaluation only)"),
    "LLMEmbSASRec, new items as negatives, id dropout": ("new items as negatives", "LLMEmbSASRec", "id_dropout=0.5",
                                            "the defaults, each item's id offset left out of half the training "
                                            "steps, so the model also ranks items by their text alone"),
    "LLMEmbSASRec, new items as negatives, text score on tail items": ("new items as negatives", "LLMEmbSASRec", "text_score=8,text_blend_gate=tail_items",
                                                          "the defaults plus the learned text term on tail items "
                                                          "(new items, never trained, are tail items)"),
    "LLMEmbSASRec, new items as negatives, text only": ("new items as negatives", "LLMEmbSASRec", "item_id_emb=False",
                                           "the paper's text-only table (no per-item id rows): every item, new or "
                                           "not, scored through the adapted text alone"),
    # ---- the paper's protocol
    "SASRec paper": ("paper", "SASRec", "", "baseline (the alignment SASRec of the paper protocol)"),
    "SASRec paper + re-ranker": ("paper", "SASRec", RERANK_PAPER + ",eval_checkpoint={ckpt:SASRec paper}",
                                 "the SASRec paper row's checkpoint re-ranked (every user alike)"),
    "SASRec paper, 40 epochs": ("paper", "SASRec", "epochs=40,resume_checkpoint={ckpt:SASRec paper}",
                                "control for the warm start under the paper's protocol: the SASRec paper row trained on"),
    "LLMEmbSASRec paper": ("paper", "LLMEmbSASRec", "", "the defaults, no re-ranker"),
    "LLMEmbSASRec paper, text only": ("paper", "LLMEmbSASRec", "item_id_emb=False",
                                      "the paper's text-only table (no per-item id rows): every item scored through "
                                      "the adapted text alone, under the paper's protocol"),
    **{f"LLMEmbSASRec paper{name}, text only{lm}": (
        "paper", "LLMEmbSASRec", ",".join(filter(None, [method, path, "item_id_emb=False"])),
        f"the paper's text-only table on {what}: the language model is all the table knows")
       for name, method, lm, path, what in (
           (" plain vectors", "llm_embedding_method=plain", "", "", "MiniLM's plain vectors"),
           (" plain vectors", "llm_embedding_method=plain", ", all-mpnet-base-v2", "llm_path=all-mpnet-base-v2",
            "all-mpnet-base-v2's plain vectors (768-d)"),
           ("", "", ", SmolLM2-135M", "llm_path=SmolLM2-135M", "the decoder SmolLM2-135M after SCFT (mean pooling)"))},
    "LLMEmbSASRec paper, id dropout": ("paper", "LLMEmbSASRec", "id_dropout=0.5",
                                       "text plus id rows, each item's id offset left out of half the training steps "
                                       "(DropoutNet's idea): the model must also rank by the text alone, and keeps "
                                       "the ids for evaluation"),
    "LLMEmbSASRec paper, head ids": ("paper", "LLMEmbSASRec", "id_offsets=head",
                                     "id offsets for head items only: a tail item is scored by its adapted text "
                                     "alone, in training and evaluation (its few interactions train no offset)"),
    "LLMEmbSASRec paper, id dropout, head ids": ("paper", "LLMEmbSASRec", "id_dropout=0.5,id_offsets=head",
                                                 "id dropout 0.5 on the head items' offsets, tail items by their "
                                                 "text alone"),
    "LLMEmbSASRec paper, id dropout, head ids in evaluation": (
        "paper", "LLMEmbSASRec", "id_dropout=0.5,id_offsets=head,eval_checkpoint={ckpt:LLMEmbSASRec paper, id dropout}",
        "the 'LLMEmbSASRec paper, id dropout' checkpoint (trained to rank by text alone half the time) evaluated "
        "with the tail items' id offsets left out: are a tail item's few-interaction offsets noise?"),
    "LLMEmbSASRec paper, id dropout 0.7": ("paper", "LLMEmbSASRec", "id_dropout=0.7",
                                           "id dropout 0.7: validation picks the rate (0.5's row beside it)"),
    "LLMEmbSASRec paper, id dropout 0.9, principal adapter": (
        "paper", "LLMEmbSASRec", "id_dropout=0.9,adapter_mode=principal",
        "id dropout 0.9 with the adapter fixed at the text's top 128 principal components, whitened: items "
        "whose offsets are dropped are ranked by the text's own geometry"),
    "LLMEmbSASRec paper, id dropout 0.9": ("paper", "LLMEmbSASRec", "id_dropout=0.9",
                                           "id dropout 0.9: does validation's preference for 0.7 over 0.5 go on?"),
    "LLMEmbSASRec paper, id L2 1e-3": ("paper", "LLMEmbSASRec", "id_l2=0.001",
                                       "an L2 penalty on the id offsets (a Gaussian prior centred on the text): a "
                                       "rarely seen item's offset shrinks towards its text"),
    **{f"LLMEmbSASRec paper, id L2 {name}": ("paper", "LLMEmbSASRec", f"id_l2={value}",
                                            f"the id L2 penalty at {name} (validation, with the mixture after training, picks the weight)")
       for name, value in (("1e-2", "0.01"), ("1e-4", "0.0001"))},
    "LLMEmbSASRec paper, id L2 1e-3, text mixture over new items": (
        "paper", "LLMEmbSASRec", "id_l2=0.001,text_mixture=0.5,text_mixture_tau=0.05,text_mixture_over=new",
        "the id L2 prior trained and evaluated with the text mixture over new items at 0.5: the mixture in training "
        "as well as after it"),
    "LLMEmbSASRec paper, no text (random vectors)": ("paper", "LLMEmbSASRec", "llm_embedding_method=random",
                                                     "the no-text ablation under the paper's protocol"),
    "LLMEmbSASRec paper, no text (random vectors), id dropout": (
        "paper", "LLMEmbSASRec", "llm_embedding_method=random,id_dropout=0.5",
        "the no-text control of 'LLMEmbSASRec paper, id dropout': is its gain the text's, or the dropout's?"),
    "SASRec paper + text mixture": ("paper", "SASRec", RERANK_MIXTURE + ",eval_checkpoint={ckpt:SASRec paper}",
                                    "the SASRec paper row's checkpoint ranked by the text mixture at the full-ranking "
                                    "share (0.5, tau 0.05; validation's choice in the probe's form of the mixture, not "
                                    "the package's: benchmarks/results/probes/text_mixture_paper.json)"),
    "SASRec paper + text mixture at 0.03": ("paper", "SASRec", RERANK_MIXTURE_PAPER + ",eval_checkpoint={ckpt:SASRec paper}",
                                            "the SASRec paper row's checkpoint ranked by the text mixture at share 0.03, "
                                            "validation's choice in the package's form under this protocol"),
    "SASRec paper, 40 epochs + text mixture at 0.03": (
        "paper", "SASRec", RERANK_MIXTURE_PAPER + ",eval_checkpoint={ckpt:SASRec paper, 40 epochs}",
        "the 'SASRec paper, 40 epochs' row's checkpoint ranked by the text mixture at share 0.03"),
    "LLMEmbSASRec paper + text mixture at 0.03": (
        "paper", "LLMEmbSASRec", RERANK_MIXTURE_PAPER + ",eval_checkpoint={ckpt:LLMEmbSASRec paper}",
        "the LLMEmbSASRec paper row's checkpoint ranked by the text mixture at share 0.03"),
    "SASRec paper + text mixture over new items": (
        "paper", "SASRec", RERANK_MIXTURE_NEW + ",eval_checkpoint={ckpt:SASRec paper}",
        "the SASRec paper row's checkpoint ranked by the text mixture with the model's part over the items outside "
        "the input (text_mixture_over=new), at validation's share 0.5"),
    "SASRec paper, 40 epochs + text mixture over new items": (
        "paper", "SASRec", RERANK_MIXTURE_NEW + ",eval_checkpoint={ckpt:SASRec paper, 40 epochs}",
        "the 'SASRec paper, 40 epochs' row's checkpoint ranked by the same mixture"),
    **{f"SASRec paper, 40 epochs + text mixture over new items, {lm}": (
        "paper", "SASRec", RERANK_MIXTURE_NEW + f",llm_path={lm},eval_checkpoint={{ckpt:SASRec paper, 40 epochs}}",
        f"the 'SASRec paper, 40 epochs' row's checkpoint ranked by the mixture over new items with {lm}'s plain vectors "
        "(the text a plugin row on that model mixes in)") for lm in ("all-mpnet-base-v2", "SmolLM2-135M")},
    "LLMEmbSASRec paper + text mixture over new items": (
        "paper", "LLMEmbSASRec", RERANK_MIXTURE_NEW + ",eval_checkpoint={ckpt:LLMEmbSASRec paper}",
        "the LLMEmbSASRec paper row's checkpoint ranked by the same mixture"),
    "LLMEmbSASRec paper, text mixture over new items": (
        "paper", "LLMEmbSASRec", "text_mixture=0.5,text_mixture_tau=0.05,text_mixture_over=new",
        "the defaults trained and evaluated with the text mixture over new items at 0.5 (the re-ranker's choice on "
        "SASRec paper's validation), BPR on the mixture's log-probabilities: part of the model, not a re-ranker"),
    "LLMEmbSASRec paper + re-ranker": ("paper", "LLMEmbSASRec", RERANK_PAPER + ",eval_checkpoint={ckpt:LLMEmbSASRec paper}",
                                       "the LLMEmbSASRec paper row's checkpoint re-ranked (every user alike)"),
    "SAIDSASRec paper": ("paper", "SAIDSASRec", "said_id_init=random", "the defaults but the paper's random start, no re-ranker"),
    "SAIDSASRec paper, no text (random vectors)": ("paper", "SAIDSASRec", "llm_embedding_method=random",
                                                   "the no-text ablation of SAID's RAT: random vectors of the LM's width"),
    "SAIDSASRec paper + re-ranker": ("paper", "SAIDSASRec", RERANK_PAPER + ",eval_checkpoint={ckpt:SAIDSASRec paper}",
                                     "the SAIDSASRec paper row's checkpoint re-ranked (every user alike)"),
    **{f"{label} + text mixture over new items{per}": (
        "paper", "SAIDSASRec", (RERANK_MIXTURE_TAIL + ",text_mixture_over=new" if per else RERANK_MIXTURE_NEW)
        + f",eval_checkpoint={{ckpt:{label}}}",
        f"the '{label}' row's checkpoint ranked by the text mixture over new items, "
        + ("a share per user (0.1 to 0.7 by the tail items among the last 3, full ranking's line)" if per
           else "one share (0.5, validation's choice on SASRec paper)"))
       for label in ("SAIDSASRec paper", "SAIDSASRec paper, no text (random vectors)") for per in ("", ", per user")},
    "SAIDSASRec paper, text start": ("paper", "SAIDSASRec", "said_id_init=text",
                                     "the defaults with SAID's id vectors started from the text's principal components"),
    "SAIDSASRec paper, text start, id dropout": ("paper", "SAIDSASRec", "said_id_init=text,id_dropout=0.5",
                                                 "SAID's vectors (text start) plus id rows, each item's id offset left "
                                                 "out of half the training steps (ids kept in evaluation)"),
    "SAIDSASRec paper, text start, text mixture over new items": (
        "paper", "SAIDSASRec", "said_id_init=text,text_mixture=0.5,text_mixture_tau=0.05,text_mixture_over=new",
        "SAID's vectors (text start) trained and evaluated with the text mixture over new items at 0.5, as the "
        "LLMEmb row of that name: part of the model, not a re-ranker"),
    "SAIDSASRec paper, text start, id export": ("paper", "SAIDSASRec", "said_id_init=text,said_export=id",
                                                "SAID's stage (text start) exporting each item's id vector (64-d) instead "
                                                "of the mean of its soft tokens"),
    "SAIDSASRec paper, text only": ("paper", "SAIDSASRec", "said_id_init=random,item_id_emb=False",
                                    "SAID's vectors in the paper's text-only table (no per-item id rows), random start"),
    "SAIDSASRec paper, text start, text only": ("paper", "SAIDSASRec", "said_id_init=text,item_id_emb=False",
                                                "SAID's vectors (codes started from the text) in the text-only table"),
    "SAIDSASRec paper, no text (random vectors), text only": ("paper", "SAIDSASRec", "llm_embedding_method=random,item_id_emb=False",
                                                              "random vectors in the text-only table: an id table behind a frozen random projection"),
    "TSLRecSASRec paper": ("paper", "TSLRecSASRec", "", "the defaults, no re-ranker (categories of the paper protocol's "
                           "alignment SASRec)"),
    "TSLRecSASRec paper, text mixture over new items": (
        "paper", "TSLRecSASRec", "text_mixture=0.5,text_mixture_tau=0.05,text_mixture_over=new",
        "TSLRec's vectors trained and evaluated with the text mixture over new items at 0.5, as the LLMEmb and "
        "SAID rows of that name: part of the model, not a re-ranker"),
    "TSLRecSASRec paper + re-ranker": ("paper", "TSLRecSASRec", RERANK_PAPER + ",eval_checkpoint={ckpt:TSLRecSASRec paper}",
                                       "the TSLRecSASRec paper row's checkpoint re-ranked (every user alike)"),
}
#: paper rows whose checkpoints are ranked again with the mixture over new items (the paper protocol's), after training
ROWS.update({f"{label} + text mixture over new items": (
    "paper", ROWS[label][1], ",".join(filter(None, [ROWS[label][2], RERANK_MIXTURE_NEW, f"eval_checkpoint={{ckpt:{label}}}"])),
    f"the '{label}' row's checkpoint ranked by the same mixture")
    for label in ("LLMEmbSASRec paper, id dropout 0.9", "LLMEmbSASRec paper, id dropout", "LLMEmbSASRec paper, id dropout 0.7",
                  "LLMEmbSASRec paper, id L2 1e-3", "SAIDSASRec paper, text start, id dropout",
                  "LLMEmbSASRec paper, id L2 1e-2", "LLMEmbSASRec paper, id L2 1e-4",
                  "LLMEmbSASRec paper plain vectors, text only", "LLMEmbSASRec paper plain vectors, text only, all-mpnet-base-v2",
                  "LLMEmbSASRec paper, text only, SmolLM2-135M")})
ROWS.update({f"LLMEmbSASRec paper, id L2 1e-3 + text mixture over new items at {share}": (
    "paper", "LLMEmbSASRec", ",".join([ROWS["LLMEmbSASRec paper, id L2 1e-3"][2], RERANK_MIXTURE_NEW.replace("text_blend=0.5", f"text_blend={share}"),
                                       "eval_checkpoint={ckpt:LLMEmbSASRec paper, id L2 1e-3}"]),
    f"the 'LLMEmbSASRec paper, id L2 1e-3' row's checkpoint with the mixture over new items at share {share} (validation picks the share)")
    for share in (0.3, 0.7)})
#: the comparisons that hold all else equal: (row, against, what differs); each ratio with its paired interval
#: rows evaluated again from their checkpoints with the input items out of the ranking (``mask_history``;
#: RecBole ranks them for sequential models, and Beauty has no repeat interaction)
MASKED = ["SASRec", "SASRec, 40 epochs", "LLMEmbSASRec", "LLMEmbSASRec plain vectors", "LLMEmbSASRec plain vectors, SmolLM2-135M",
          "LLMEmbSASRec, no text (random vectors)",
          "LLMEmbSASRec, self-distillation", "LLMEmbSASRec, LM vectors trained",
          "LLMEmbSASRec, fixed text score on tail items", "LLMEmbSASRec, text mixture",
          "LLMEmbSASRec, text mixture and own loss", "LLMEmbSASRec, text mixture at 0.3",
          "LLMEmbSASRec, text mixture per user", "SAIDSASRec", "TSLRecSASRec",
          "SAIDSASRec, text start", "SAIDSASRec, text start, id export", "SAIDSASRec, no text (random vectors)",
          "GRU4Rec", "GRU4Rec, 40 epochs", "LLMEmbGRU4Rec", "LLMEmbGRU4Rec, no text (random vectors)",
          "SAIDGRU4Rec", "TSLRecGRU4Rec", "SAIDGRU4Rec, no text (random vectors)",
          "SASRec, hidden 128", "SASRec, hidden 128, 40 epochs", "LLMEmbSASRec, hidden 128",
          "LLMEmbSASRec, hidden 128, no text (random vectors)"]
ROWS.update({f"{label} + text mixture per user, history masked": (
    "full", ROWS[label][1], RERANK_MIXTURE_TAIL + f",mask_history=True,eval_checkpoint={{ckpt:{label}}}",
    f"the '{label}' row's checkpoint ranked by the text mixture with a share per user, input items out of the ranking")
    for label in ("SASRec, 40 epochs", "SAIDSASRec", "SAIDSASRec, text start", "SAIDSASRec, no text (random vectors)", "GRU4Rec", "GRU4Rec, 40 epochs", "LLMEmbGRU4Rec", "LLMEmbGRU4Rec, no text (random vectors)",
                  "SAIDGRU4Rec", "TSLRecGRU4Rec", "SAIDGRU4Rec, no text (random vectors)",
                  "LLMEmbSASRec, id dropout", "LLMEmbSASRec, id L2 1e-3")})
ROWS.update({f"{label}, history masked": (
    "full", ROWS[label][1], ",".join(filter(None, [ROWS[label][2], "mask_history=True", f"eval_checkpoint={{ckpt:{label}}}"])),
    f"the '{label}' row's checkpoint evaluated with the user's input items out of the ranking") for label in MASKED})

LIKE_FOR_LIKE = [
    ("SASRec, history masked", "SASRec", "the input items out of the ranking vs RecBole's full ranking (evaluation only)"),
    ("LLMEmbSASRec, history masked", "SASRec, 40 epochs, history masked", "the LM's table and alignment (both allowed 20 epochs beyond the SASRec row), both masked"),
    ("LLMEmbSASRec, text mixture, history masked", "SASRec, 40 epochs, history masked", "the LM's table, alignment and text mixture (both allowed 20 epochs beyond the SASRec row), both masked"),
    ("LLMEmbSASRec, no text (random vectors), history masked", "SASRec, 40 epochs, history masked", "the pipeline without text (both allowed 20 epochs more), both masked"),
    ("LLMEmbSASRec, history masked", "LLMEmbSASRec, no text (random vectors), history masked", "the text, both masked"),
    ("LLMEmbSASRec, text mixture", "LLMEmbSASRec", "the text's distribution mixed with the model's, in training and evaluation"),
    ("LLMEmbSASRec, text mixture and own loss", "LLMEmbSASRec, text mixture", "the model's own cross-entropy beside the mixture's in training"),
    ("LLMEmbSASRec, text mixture and own loss", "LLMEmbSASRec + text mixture", "the mixture (beside the own loss) in training too vs after it only, same LM table"),
    ("LLMEmbSASRec, text mixture and own loss", "SASRec + text mixture", "the LM's table and alignment, the mixture (beside the own loss) in training too vs after it"),
    ("LLMEmbSASRec, text mixture and own loss, history masked", "SASRec + text mixture, history masked", "the same, both masked"),
    ("LLMEmbSASRec, text mixture and own loss, history masked", "SASRec, 40 epochs, history masked", "the LM's table, alignment and text mixture with the own loss (both allowed 20 epochs beyond the SASRec row), both masked"),
    ("SAIDSASRec", "SASRec, 40 epochs", "SAID's vectors (repaired stage) through RAT (both allowed 20 epochs beyond the SASRec row)"),
    ("SAIDSASRec, history masked", "SASRec, 40 epochs, history masked", "the same, both masked"),
    ("SAIDSASRec", "SAIDSASRec, no text (random vectors)", "the text: SAID's vectors vs random ones, same RAT"),
    ("SAIDSASRec, text start", "SAIDSASRec", "where SAID's id vectors start: the text's principal components vs random (one stage setting)"),
    ("SAIDSASRec, text start, history masked", "SAIDSASRec, history masked", "the same, both masked"),
    ("SAIDSASRec, text start", "SAIDSASRec, no text (random vectors)", "the text: SAID's vectors (text start) vs random ones, same RAT"),
    ("SAIDSASRec, text start, id export", "SAIDSASRec, text start", "SAID's export: the id vectors vs the mean soft token, one stage"),
    ("SAIDSASRec, text start, id export", "SAIDSASRec, no text (random vectors)", "the text: SAID's id vectors (text start) vs random vectors, same RAT"),
    ("SAIDSASRec, text start, history masked", "SAIDSASRec, no text (random vectors), history masked", "the same, both masked"),
    ("SAIDSASRec, text start + text mixture per user, history masked", "SAIDSASRec, no text (random vectors) + text mixture per user, history masked",
     "the text in the table (SAID, text start), both mixed per user after training"),
    ("SAIDSASRec, text start, text only", "SAIDSASRec, text start", "the per-item id rows beside SAID's vectors (text start): without vs with"),
    ("SAIDSASRec, text start, text only", "SAIDSASRec, no text (random vectors), text only", "the text in a text-only table: SAID's vectors (text start) vs random ones"),
    ("SAIDSASRec, text start, text only", "SASRec, 40 epochs", "SAID's text-only table (text start) vs SASRec trained as long"),
    ("SAIDSASRec, text start", "SASRec, 40 epochs", "SAID's vectors (text start) through RAT (both allowed 20 epochs beyond the SASRec row)"),
    ("SAIDSASRec + text mixture, history masked", "SASRec + text mixture, history masked", "SAID's vectors through RAT, both with the text mixture after training, both masked"),
    ("SAIDSASRec + text mixture at 0.3, history masked", "SASRec, 40 epochs + text mixture at 0.3, history masked", "SAID's vectors through RAT (both allowed 20 epochs beyond the SASRec row), both with the mixture at 0.3, both masked"),
    ("SASRec + text mixture", "SASRec", "the text mixture after training"),
    ("LLMEmbSASRec + text mixture, history masked", "SASRec + text mixture, history masked", "the LM's table and alignment (and 20 more epochs), both with the text mixture after training, both masked"),
    ("SASRec, new items + text mixture", "SASRec, new items", "the text mixture after training, new items held out"),
    ("LLMEmbSASRec, new items + text mixture", "SASRec, new items + text mixture", "the LM's table and alignment, both with the text mixture, new items held out"),
    ("LLMEmbSASRec, new items + text mixture, history masked", "SASRec, new items + text mixture, history masked", "the same, both masked"),
    ("TSLRecSASRec", "SASRec, 40 epochs", "TSLRec's vectors through RAT (both allowed 20 epochs beyond the SASRec row)"),
    ("TSLRecSASRec", "LLMEmbSASRec", "the vectors and RAT's alignment: TSLRec's (alpha 0) vs LLMEmb's"),
    ("TSLRecSASRec, history masked", "SASRec, 40 epochs, history masked", "TSLRec's vectors through RAT (both allowed 20 epochs beyond the SASRec row), both masked"),
    ("TSLRecSASRec + text mixture at 0.3, history masked", "SASRec, 40 epochs + text mixture at 0.3, history masked", "TSLRec's vectors through RAT (both allowed 20 epochs beyond the SASRec row), both with the mixture at 0.3, both masked"),
    ("SASRec + text mixture, history masked", "SASRec, history masked", "the text mixture after training, both masked"),
    ("SASRec + text mixture at 0.3, history masked", "SASRec, history masked", "the text mixture after training at validation's share, both masked"),
    ("LLMEmbSASRec, text mixture at 0.3, history masked", "LLMEmbSASRec + text mixture at 0.3, history masked", "the mixture at 0.3 in training too vs after it only, same LM table, both masked"),
    ("LLMEmbSASRec, text mixture at 0.3, history masked", "SASRec, 40 epochs, history masked", "the LM's table, alignment and text mixture at 0.3 (both allowed 20 epochs beyond the SASRec row), no re-ranker on either side, both masked"),
    ("LLMEmbSASRec + text mixture at 0.3, history masked", "SASRec + text mixture at 0.3, history masked", "the LM's table and alignment (and 20 more epochs), both with the mixture at 0.3, both masked"),
    ("LLMEmbSASRec + text mixture at 0.3, history masked", "SASRec, 40 epochs + text mixture at 0.3, history masked", "the LM's table and alignment (both allowed 20 epochs beyond the SASRec row), both with the mixture at 0.3, both masked"),
    ("SASRec + text mixture, SmolLM2-135M, history masked", "SASRec + text mixture, history masked", "the text's encoder: the decoder SmolLM2-135M vs the packaged MiniLM (both at share 0.5), both mixed after training, both masked"),
    ("SASRec + text mixture, all-mpnet-base-v2, history masked", "SASRec + text mixture, history masked", "the text's encoder: all-mpnet-base-v2 vs the packaged MiniLM (each at its validation's share), both mixed after training, both masked"),
    ("LLMEmbSASRec, text mixture", "SASRec + text mixture", "the LM's table and alignment, the mixture in training too vs after it"),
    ("LLMEmbSASRec, text mixture, history masked", "SASRec + text mixture, history masked", "the LM's table and alignment, the mixture in training too vs after it, both masked"),
    ("LLMEmbSASRec, text mixture, history masked", "LLMEmbSASRec + text mixture, history masked", "the mixture in training too vs after it, same LM table, both masked"),
    ("LLMEmbSASRec, text mixture", "SASRec", "the LM's table, alignment, text mixture and the warm start's 20 more epochs"),
    ("LLMEmbSASRec, text mixture, history masked", "LLMEmbSASRec, history masked", "the text mixture, both masked"),
    ("LLMEmbSASRec, text mixture, history masked", "SASRec, history masked", "the LM's table, alignment, text mixture and the warm start's 20 more epochs, both masked"),
    ("LLMEmbSASRec, fixed text score on tail items, history masked", "SASRec, history masked", "the LM's table, alignment and fixed text term on tail items, both masked"),
    ("LLMEmbSASRec plain vectors, history masked", "SASRec, history masked", "the LM's table (plain vectors) and alignment, both masked"),
    ("LLMEmbSASRec, self-distillation, history masked", "SASRec, history masked", "the LM's table, alignment and self-distillation, both masked"),
    ("SASRec + re-ranker", "SASRec", "the re-ranker"),
    ("LLMEmbSASRec", "SASRec, 40 epochs", "the LM's text-plus-id table and alignment (both allowed 20 epochs beyond the SASRec row)"),
    ("LLMEmbSASRec", "LLMEmbSASRec, no text (random vectors)", "the text: LM vectors vs random ones, same pipeline"),
    ("LLMEmbSASRec, no text (random vectors)", "SASRec, 40 epochs", "the pipeline without text (both allowed 20 epochs beyond the SASRec row)"),
    ("LLMEmbSASRec + re-ranker", "SASRec + re-ranker", "the LM's table and alignment, both re-ranked"),
    ("SASRec + re-ranker on tail items", "SASRec", "the re-ranker on tail items only"),
    ("LLMEmbSASRec + re-ranker on tail items", "SASRec + re-ranker on tail items", "the LM's table and alignment, both re-ranked on tail items"),
    ("LLMEmbSASRec", "SASRec", "the LM's table and alignment, and 20 more epochs (warm start)"),
    ("LLMEmbSASRec paper", "SASRec paper, 40 epochs", "the LM's table and alignment (both allowed 20 epochs beyond SASRec paper)"),
    ("LLMEmbSASRec paper", "LLMEmbSASRec paper, no text (random vectors)", "the text, under the paper's protocol"),
    ("LLMEmbSASRec paper, text only", "LLMEmbSASRec paper", "the table: the paper's text only vs text plus id rows"),
    ("LLMEmbSASRec paper, text only", "SASRec paper, 40 epochs", "the paper's text-only table and alignment (both allowed 20 epochs beyond SASRec paper)"),
    ("LLMEmbSASRec paper plain vectors, text only", "LLMEmbSASRec paper, text only", "plain MiniLM vectors vs SCFT's, the paper's text-only table"),
    ("LLMEmbSASRec paper plain vectors, text only, all-mpnet-base-v2", "LLMEmbSASRec paper plain vectors, text only",
     "the language model: mpnet vs MiniLM (plain vectors), the paper's text-only table"),
    ("LLMEmbSASRec paper, text only, SmolLM2-135M", "LLMEmbSASRec paper, text only",
     "the language model under SCFT: SmolLM2-135M vs MiniLM, the paper's text-only table"),
    ("LLMEmbSASRec paper plain vectors, text only, all-mpnet-base-v2", "SASRec paper, 40 epochs", "mpnet's text-only table vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, text only, SmolLM2-135M", "SASRec paper, 40 epochs", "SmolLM2's text-only table vs SASRec paper trained as long"),
    # the mixture reads the row's own model's plain vectors, so its SASRec control mixes in the same ones
    *[(f"{label} + text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items" + (f", {lm}" if lm else ""),
       f"the text-only table ({lm or 'MiniLM, plain'}) vs SASRec paper trained as long, both mixed over new items after training "
       f"with {lm or 'MiniLM'}'s plain vectors")
      for label, lm in (("LLMEmbSASRec paper plain vectors, text only", ""),
                        ("LLMEmbSASRec paper plain vectors, text only, all-mpnet-base-v2", "all-mpnet-base-v2"),
                        ("LLMEmbSASRec paper, text only, SmolLM2-135M", "SmolLM2-135M"))],
    ("LLMEmbSASRec paper, id dropout", "LLMEmbSASRec paper", "id dropout 0.5 vs none (text plus id rows)"),
    ("LLMEmbSASRec paper, id dropout, head ids in evaluation", "LLMEmbSASRec paper, id dropout", "the same checkpoint, tail items' offsets left out in evaluation vs kept"),
    ("LLMEmbSASRec paper, id dropout 0.7", "LLMEmbSASRec paper, id dropout", "id dropout 0.7 vs 0.5"),
    ("LLMEmbSASRec paper, id dropout 0.7", "SASRec paper, 40 epochs", "the text-plus-id table trained with id dropout 0.7 vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, id dropout 0.9", "LLMEmbSASRec paper, id dropout 0.7", "id dropout 0.9 vs 0.7"),
    ("LLMEmbSASRec paper, id dropout 0.9", "SASRec paper, 40 epochs", "the text-plus-id table trained with id dropout 0.9 vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, id L2 1e-3", "LLMEmbSASRec paper", "an L2 penalty (1e-3) on the id offsets vs none"),
    ("LLMEmbSASRec paper, id L2 1e-3", "SASRec paper, 40 epochs", "the text-plus-id table with id L2 vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, id L2 1e-2 + text mixture over new items", "LLMEmbSASRec paper, id L2 1e-3 + text mixture over new items",
     "id L2 1e-2 vs 1e-3, both mixed over new items after training"),
    ("LLMEmbSASRec paper, id L2 1e-4 + text mixture over new items", "LLMEmbSASRec paper, id L2 1e-3 + text mixture over new items",
     "id L2 1e-4 vs 1e-3, both mixed over new items after training"),
    ("LLMEmbSASRec paper, id L2 1e-2 + text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items",
     "the table with id L2 1e-2 vs SASRec trained as long, both mixed over new items"),
    ("LLMEmbSASRec paper, id L2 1e-4 + text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items",
     "the table with id L2 1e-4 vs SASRec trained as long, both mixed over new items"),
    ("LLMEmbSASRec paper, id L2 1e-3, text mixture over new items", "LLMEmbSASRec paper, id L2 1e-3 + text mixture over new items",
     "the mixture in training and evaluation vs in evaluation only (the same id L2 table)"),
    ("LLMEmbSASRec paper, id L2 1e-3, text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items",
     "the id L2 table trained with the mixture vs SASRec trained as long and mixed after training"),
    ("LLMEmbSASRec paper, head ids", "LLMEmbSASRec paper", "id offsets for head items only vs every item"),
    ("LLMEmbSASRec paper, head ids", "SASRec paper, 40 epochs", "tail items by their text alone, head items text plus id, vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, id dropout, head ids", "LLMEmbSASRec paper, id dropout", "id offsets for head items only vs every item (both id dropout 0.5)"),
    ("LLMEmbSASRec paper, id dropout, head ids", "SASRec paper, 40 epochs", "head ids with id dropout vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, id dropout", "SASRec paper, 40 epochs", "the text-plus-id table trained with id dropout and alignment vs SASRec paper trained as long"),
    ("LLMEmbSASRec paper, id dropout", "LLMEmbSASRec paper, text only", "id dropout (ids kept in evaluation) vs no id rows"),
    ("LLMEmbSASRec paper, id dropout", "LLMEmbSASRec paper, no text (random vectors), id dropout", "the text, both trained with id dropout"),
    ("LLMEmbSASRec paper, no text (random vectors), id dropout", "LLMEmbSASRec paper, no text (random vectors)", "id dropout without the text"),
    ("LLMEmbSASRec paper", "SASRec paper", "the LM's table and alignment, and the warm start's extra epochs"),
    ("LLMEmbSASRec paper + re-ranker", "SASRec paper + re-ranker", "the LM's table and alignment, both re-ranked"),
    ("SASRec paper + text mixture", "SASRec paper", "the text mixture after training (share 0.5), paper protocol"),
    ("SASRec paper + text mixture at 0.03", "SASRec paper", "the text mixture after training at validation's share, paper protocol"),
    ("LLMEmbSASRec paper + text mixture at 0.03", "SASRec paper + text mixture at 0.03", "the LM's table and alignment (and the warm start's extra epochs), both with the text mixture after training"),
    ("LLMEmbSASRec paper + text mixture at 0.03", "SASRec paper, 40 epochs + text mixture at 0.03", "the LM's table and alignment (both allowed 20 epochs beyond SASRec paper), both with the text mixture after training"),
    ("SASRec paper + text mixture over new items", "SASRec paper", "the text mixture (model part over new items) after training, paper protocol"),
    ("SASRec paper + text mixture over new items", "SASRec paper + text mixture at 0.03", "the mixture's model part over the items outside the input vs over every item, each at validation's share"),
    ("LLMEmbSASRec paper, id dropout 0.9 + text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items", "the LM's table trained with id dropout 0.9 vs SASRec trained as long, both with the mixture over new items"),
    ("LLMEmbSASRec paper, id dropout 0.9 + text mixture over new items", "LLMEmbSASRec paper + text mixture over new items", "id dropout 0.9 vs none, both with the mixture over new items"),
    *[(f"{label} + text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items",
       f"{what} vs SASRec trained as long, both with the mixture over new items")
      for label, what in (("LLMEmbSASRec paper, id dropout", "the LM's table trained with id dropout 0.5"),
                          ("LLMEmbSASRec paper, id dropout 0.7", "the LM's table trained with id dropout 0.7"),
                          ("LLMEmbSASRec paper, id L2 1e-3", "the LM's table trained with the id L2 prior"),
                          ("SAIDSASRec paper, text start, id dropout", "SAID's table trained with id dropout 0.5"))],
    ("LLMEmbSASRec paper + text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items", "the LM's table and alignment (both allowed 20 epochs beyond SASRec paper), both with the mixture over new items"),
    ("LLMEmbSASRec paper, text mixture over new items", "SASRec paper, 40 epochs", "the LM's table, alignment and trained text mixture (both allowed 20 epochs beyond SASRec paper), no re-ranker on either side"),
    ("LLMEmbSASRec paper, text mixture over new items", "LLMEmbSASRec paper + text mixture over new items", "the mixture in training vs after it, same model"),
    ("SAIDSASRec paper", "SASRec paper, 40 epochs", "SAID's vectors through RAT (both allowed 20 epochs beyond SASRec paper)"),
    ("SAIDSASRec paper", "SAIDSASRec paper, no text (random vectors)", "SAID's vectors vs random ones, same RAT"),
    ("SAIDSASRec paper, text start", "SAIDSASRec paper", "where SAID's id vectors start: the text's principal components vs random"),
    ("SAIDSASRec paper, text start", "SAIDSASRec paper, no text (random vectors)", "the text: SAID's vectors (text start) vs random ones, same RAT"),
    ("SAIDSASRec paper + text mixture over new items, per user", "SAIDSASRec paper + text mixture over new items", "paper protocol: a share per user (full ranking's line) vs one share (0.5), the mixture over new items after training"),
    ("SAIDSASRec paper + text mixture over new items", "SAIDSASRec paper", "paper protocol: the text mixture over new items after training (0.5)"),
    ("SAIDSASRec paper + text mixture over new items", "SAIDSASRec paper, no text (random vectors) + text mixture over new items", "the text in SAID's table, both mixed over new items after training"),
    ("SAIDSASRec paper, no text (random vectors) + text mixture over new items, per user", "SAIDSASRec paper, no text (random vectors) + text mixture over new items", "paper protocol, the no-text control: a share per user vs one share"),
    ("SAIDSASRec paper, text start, id export", "SAIDSASRec paper, text start", "SAID's export: the id vectors vs the mean soft token, one stage"),
    ("SAIDSASRec paper, text start, id export", "SAIDSASRec paper, no text (random vectors)", "the text: SAID's id vectors (text start) vs random vectors, same RAT"),
    ("SAIDSASRec paper, text start", "SASRec paper, 40 epochs", "SAID's vectors (text start) through RAT (both allowed 20 epochs beyond SASRec paper)"),
    ("SAIDSASRec paper, text start, text only", "SAIDSASRec paper, text only", "where SAID's codes start, in the text-only table"),
    ("SAIDSASRec paper, text start, text only", "SAIDSASRec paper, no text (random vectors), text only", "the text in the text-only table: SAID's vectors (text start) vs random ones"),
    ("SAIDSASRec paper, text start, text only", "SASRec paper, 40 epochs", "SAID's text-only table (text start) vs SASRec paper trained as long"),
    ("SAIDSASRec paper, text start, id dropout", "SAIDSASRec paper, text start", "id dropout 0.5 vs none (SAID's vectors, text start)"),
    ("SAIDSASRec paper, text start, id dropout", "SASRec paper, 40 epochs", "SAID's table trained with id dropout vs SASRec paper trained as long"),
    ("SAIDSASRec paper, text start, text mixture over new items", "SASRec paper, 40 epochs",
     "SAID trained with the mixture vs SASRec paper trained as long (no re-ranker on either side)"),
    ("SAIDSASRec paper, text start, text mixture over new items", "LLMEmbSASRec paper, text mixture over new items",
     "the method's vectors, both trained with the mixture: SAID vs LLMEmb"),
    ("SAIDSASRec paper, text start, text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items",
     "SAID trained with the mixture vs SASRec mixed after training"),
    ("SAIDSASRec paper, text start, text mixture over new items", "SAIDSASRec paper, text start",
     "the mixture trained in, with vs without (SAID's vectors, text start)"),
    ("TSLRecSASRec paper, text mixture over new items", "SASRec paper, 40 epochs",
     "TSLRec trained with the mixture vs SASRec paper trained as long (no re-ranker on either side)"),
    ("TSLRecSASRec paper, text mixture over new items", "TSLRecSASRec paper", "the mixture trained in, with vs without (TSLRec's vectors)"),
    ("TSLRecSASRec paper, text mixture over new items", "SASRec paper, 40 epochs + text mixture over new items",
     "TSLRec trained with the mixture vs SASRec mixed after training"),
    ("SAIDSASRec paper + re-ranker", "SASRec paper + re-ranker", "SAID's vectors through RAT, both re-ranked"),
    ("TSLRecSASRec paper", "SASRec paper, 40 epochs", "TSLRec's vectors through RAT (both allowed 20 epochs beyond SASRec paper)"),
    ("TSLRecSASRec paper", "SAIDSASRec paper, no text (random vectors)", "TSLRec's vectors vs random ones, same RAT "
     "(SAID's control is TSLRec's: on random vectors the two models' configs differ only in the model's name)"),
    ("TSLRecSASRec paper + re-ranker", "SASRec paper + re-ranker", "TSLRec's vectors through RAT, both re-ranked"),
    ("LLMEmbSASRec @uni100", "LLMEmbSASRec, no text (random vectors) @uni100", "the text, full-ranking training evaluated as the paper protocol evaluates"),
    ("LLMEmbSASRec @uni100", "SASRec, 40 epochs @uni100", "the LM's table and alignment, full-ranking training evaluated at uni100"),
    ("SASRec + text mixture per user, history masked", "SASRec + text mixture at 0.3, history masked",
     "a share per user by the recent tail items vs validation's one share, same checkpoint"),
    ("LLMEmbSASRec + text mixture per user, history masked", "SASRec + text mixture per user, history masked",
     "the LM's table and alignment (and the warm start's 20 epochs), both mixed per user after training"),
    ("LLMEmbSASRec, text mixture per user, history masked", "LLMEmbSASRec + text mixture per user, history masked",
     "the per-user mixture in training vs after it"),
    ("LLMEmbSASRec + text mixture per user, history masked", "SASRec, 40 epochs + text mixture per user, history masked",
     "the LM's table and alignment (both allowed 20 epochs beyond the SASRec row), both mixed per user after training"),
    ("LLMEmbGRU4Rec, history masked", "GRU4Rec, 40 epochs, history masked", "the LM's table, alignment and the SASRec's start, both masked"),
    ("LLMEmbGRU4Rec, history masked", "LLMEmbGRU4Rec, no text (random vectors), history masked", "the text, on GRU4Rec, both masked"),
    ("GRU4Rec + text mixture per user, history masked", "GRU4Rec, history masked", "the per-user text mixture after training, on GRU4Rec"),
    ("LLMEmbGRU4Rec + text mixture per user, history masked", "GRU4Rec, 40 epochs + text mixture per user, history masked",
     "the LM's table, alignment and the SASRec's start, both mixed per user"),
    ("LLMEmbGRU4Rec + text mixture per user, history masked", "LLMEmbGRU4Rec, no text (random vectors) + text mixture per user, history masked",
     "the text in the table, both mixed per user"),
    ("LLMEmbGRU4Rec", "GRU4Rec, 40 epochs", "the LM's table, alignment and the SASRec's start (both allowed 20 epochs more)"),
    ("LLMEmbGRU4Rec", "LLMEmbGRU4Rec, no text (random vectors)", "the text, on GRU4Rec"),
    *[row for method in ("SAID", "TSLRec") for row in (
        (f"{method}GRU4Rec", "GRU4Rec, 40 epochs", f"{method}'s vectors through RAT and the SASRec's start (both allowed 20 epochs more)"),
        (f"{method}GRU4Rec", "SAIDGRU4Rec, no text (random vectors)", f"the text: {method}'s vectors vs random ones, same RAT, on GRU4Rec"),
        (f"{method}GRU4Rec, history masked", "SAIDGRU4Rec, no text (random vectors), history masked", f"the text ({method}'s vectors), on GRU4Rec, both masked"),
        (f"{method}GRU4Rec + text mixture per user, history masked", "SAIDGRU4Rec, no text (random vectors) + text mixture per user, history masked",
         f"the text in the table ({method}'s vectors), both mixed per user"))],
    *[row for method in ("SAID", "TSLRec") for row in (
        (f"{method}BERT4Rec", "BERT4Rec, 40 epochs", f"{method}'s vectors through RAT and the SASRec's start (both allowed 20 epochs more)"),
        (f"{method}BERT4Rec", "SAIDBERT4Rec, no text (random vectors)", f"the text: {method}'s vectors vs random ones, same RAT, on BERT4Rec"))],
    ("SAIDGRU4Rec, no text (random vectors)", "GRU4Rec, 40 epochs", "the SASRec's start through RAT without text or alignment (both allowed 20 epochs more)"),
    ("LLMEmbBERT4Rec", "BERT4Rec, 40 epochs", "the LM's table, alignment and the SASRec's start (both allowed 20 epochs more)"),
    ("LLMEmbBERT4Rec", "LLMEmbBERT4Rec, no text (random vectors)", "the text, on BERT4Rec"),
    ("LLMEmbSASRec, text score", "LLMEmbSASRec + re-ranker", "the text's similarity learned in training vs added after it"),
    ("LLMEmbSASRec, text score", "LLMEmbSASRec", "the learned text term"),
    ("LLMEmbSASRec, text score", "SASRec, 40 epochs", "the LM's table, alignment and text term (both allowed 20 epochs beyond the SASRec row)"),
    ("SASRec, recent target weights", "SASRec", "training targets weighted to the recent popularity mix vs not"),
    ("LLMEmbSASRec, recent target weights", "SASRec, recent target weights", "the LM's table and alignment, and the warm start's 20 more epochs, both with target weights"),
    ("LLMEmbSASRec, recent target weights", "LLMEmbSASRec", "training targets weighted to the recent popularity mix vs not"),
    ("SASRec, hidden 128", "SASRec", "width 128 vs 64"),
    ("LLMEmbSASRec, id dropout + text mixture per user, history masked", "SASRec, 40 epochs + text mixture per user, history masked", "the LM's table trained with id dropout vs SASRec trained as long, both mixed per user after training, masked"),
    ("LLMEmbSASRec, id L2 1e-3 + text mixture per user, history masked", "SASRec, 40 epochs + text mixture per user, history masked", "the LM's table trained with the id L2 prior vs SASRec trained as long, both mixed per user after training, masked"),
    ("LLMEmbSASRec, principal adapter", "LLMEmbSASRec", "the adapter fixed at the text's principal components vs trained"),
    ("LLMEmbSASRec paper, id dropout 0.9, principal adapter", "LLMEmbSASRec paper, id dropout 0.9", "the adapter fixed at the text's principal components vs trained, both with id dropout 0.9"),
    ("LLMEmbSASRec paper, id dropout 0.9, principal adapter", "SASRec paper, 40 epochs", "the plugin model with id dropout 0.9 and the fixed adapter vs SASRec trained as long"),
    ("LLMEmbSASRec plain vectors, PCA 128", "LLMEmbSASRec plain vectors", "PCA to 128 dimensions before the adapter vs none"),
    ("SASRec, hidden 128, 40 epochs", "SASRec, 40 epochs", "width 128 vs 64, both trained 40 epochs"),
    ("LLMEmbSASRec, hidden 128", "SASRec, hidden 128, 40 epochs", "the LM's table and alignment at width 128 (both allowed 20 epochs more)"),
    ("LLMEmbSASRec, hidden 128, history masked", "SASRec, hidden 128, 40 epochs, history masked", "the same, input items out of the ranking"),
    ("LLMEmbSASRec, hidden 128", "LLMEmbSASRec, hidden 128, no text (random vectors)", "the text at width 128"),
    ("LLMEmbSASRec, hidden 128", "LLMEmbSASRec", "width 128 vs 64, the plugin model"),
    ("LLMEmbSASRec, fixed text score on tail items, recent target weights", "LLMEmbSASRec, fixed text score on tail items", "training targets weighted to the recent popularity mix vs not, with the fixed text term"),
    ("LLMEmbSASRec, fixed text score on tail items, recent target weights", "LLMEmbSASRec, recent target weights", "the fixed text term on tail items, with recent target weights"),
    ("LLMEmbSASRec, fixed text score on tail items, recent target weights", "SASRec, recent target weights", "the LM's table, alignment and fixed text term vs SASRec, both with recent target weights"),
    ("LLMEmbSASRec, self-distillation", "LLMEmbSASRec", "LLM-ESR's self-distillation (0.1, 10 text-retrieved users) vs none"),
    ("LLMEmbSASRec, LM vectors trained", "LLMEmbSASRec", "the SCFT item matrix trained with the model vs frozen"),
    ("LLMEmbSASRec, id dropout", "LLMEmbSASRec", "id dropout 0.5 vs none"),
    ("LLMEmbSASRec, id L2 1e-3", "LLMEmbSASRec", "an L2 penalty (1e-3) on the id offsets vs none"),
    ("LLMEmbSASRec, id L2 1e-3", "SASRec, 40 epochs", "the text-plus-id table with id L2 vs SASRec trained as long"),
    ("LLMEmbSASRec, id L2 1e-4", "LLMEmbSASRec", "an L2 penalty (1e-4) on the id offsets vs none"),
    ("LLMEmbSASRec, id L2 1e-4", "SASRec, 40 epochs", "the text-plus-id table with id L2 1e-4 vs SASRec trained as long"),
    ("LLMEmbSASRec, head ids", "LLMEmbSASRec", "id offsets for head items only vs every item"),
    ("LLMEmbSASRec, head ids", "SASRec, 40 epochs", "tail items by their text alone vs SASRec trained as long"),
    ("LLMEmbSASRec, id dropout", "SASRec, 40 epochs", "the table trained with id dropout and alignment vs SASRec trained as long"),
    ("LLMEmbSASRec plain vectors, all-mpnet-base-v2", "LLMEmbSASRec plain vectors", "the language model: mpnet vs MiniLM (plain vectors)"),
    ("LLMEmbSASRec plain vectors, SmolLM2-135M", "LLMEmbSASRec plain vectors", "the language model: SmolLM2-135M vs MiniLM (plain vectors)"),
    ("LLMEmbSASRec, SmolLM2-135M", "LLMEmbSASRec plain vectors, SmolLM2-135M", "SCFT on the decoder SmolLM2-135M vs its plain vectors"),
    ("LLMEmbSASRec, all-mpnet-base-v2", "LLMEmbSASRec plain vectors, all-mpnet-base-v2", "SCFT on mpnet vs its plain vectors"),
    ("LLMEmbSASRec, all-mpnet-base-v2", "LLMEmbSASRec", "the language model under SCFT: mpnet vs MiniLM"),
    ("LLMEmbSASRec, all-mpnet-base-v2", "SASRec, 40 epochs", "SCFT on mpnet: its table and alignment vs SASRec trained as long"),
    ("LLMEmbSASRec, SmolLM2-135M", "LLMEmbSASRec", "the language model under SCFT: SmolLM2-135M vs MiniLM"),
    ("LLMEmbSASRec, SmolLM2-135M", "SASRec, 40 epochs", "SCFT on the decoder: its table and alignment vs SASRec trained as long"),
    ("LLMEmbSASRec plain vectors, SmolLM2-135M, history masked", "LLMEmbSASRec plain vectors, history masked", "the language model: SmolLM2-135M vs MiniLM (plain vectors), both masked"),
    ("LLMEmbSASRec plain vectors, SmolLM2-135M, history masked", "SASRec, 40 epochs, history masked", "the decoder's table and alignment (both allowed 20 epochs beyond the SASRec row), both masked"),
    ("LLMEmbSASRec plain vectors", "LLMEmbSASRec", "the vectors: plain vs SCFT"),
    ("LLMEmbSASRec, text score", "SASRec + re-ranker", "the LM's table, alignment and learned text term vs SASRec re-ranked"),
    ("LLMEmbSASRec, text score on tail items", "LLMEmbSASRec + re-ranker on tail items", "the text term on tail items learned in training vs added after it"),
    ("LLMEmbSASRec, fixed text score on tail items", "LLMEmbSASRec, text score on tail items", "the text term's weight fixed vs learned"),
    ("LLMEmbSASRec, fixed text score on tail items", "LLMEmbSASRec + re-ranker on tail items", "the text term at a fixed weight in training too vs after it only"),
    ("LLMEmbSASRec, fixed text score on tail items", "SASRec, 40 epochs", "the LM's table, alignment and fixed text term on tail items (both allowed 20 epochs beyond the SASRec row)"),
    ("LLMEmbSASRec, fixed text score on tail items, evaluated without it", "LLMEmbSASRec", "trained beside the text term, evaluated without it vs trained without it"),
    ("LLMEmbSASRec, fixed text score on tail items, evaluated at 16", "LLMEmbSASRec, fixed text score on tail items", "the term's weight at evaluation: 16 vs the 8 it trained with"),
    ("LLMEmbSASRec, fixed text score on tail items, evaluated at 16", "SASRec + re-ranker on tail items", "trained with the text term (8) and evaluated with 16 vs SASRec with the term added after training only (weight chosen on validation; 16 was not)"),
    ("LLMEmbSASRec, fixed text score on tail items, evaluated at 16", "LLMEmbSASRec + re-ranker on tail items", "trained with the text term (8) and evaluated with 16 vs the term added after training only (weight chosen on validation; 16 was not)"),
    ("LLMEmbSASRec, text score on tail items", "SASRec, 40 epochs", "the LM's table, alignment and text term on tail items (both allowed 20 epochs beyond the SASRec row)"),
    ("LLMEmbSASRec, text score on tail items", "SASRec + re-ranker on tail items", "the LM's table, alignment and learned text term vs SASRec re-ranked on tail items"),
    ("LLMEmbSASRec, new items", "SASRec, new items", "the LM's table and alignment, and 20 more epochs (warm start)"),
    ("LLMEmbSASRec, new items, text only", "LLMEmbSASRec, new items", "the table: text only vs text plus id rows, with new items"),
    ("LLMEmbSASRec, new items, fixed text score on tail items", "LLMEmbSASRec, new items", "the text term on tail items at a fixed weight, with new items"),
    ("SASRec, new items", "SASRec, new items as negatives", "new items out of the training softmax vs its negatives (and the machine: see each row's record)"),
    ("LLMEmbSASRec, new items", "LLMEmbSASRec, new items as negatives", "new items out of the training softmax vs its negatives (and the machine: the adapter's precision follows the CPU, see the records)"),
    ("LLMEmbSASRec, new items, text only", "LLMEmbSASRec, new items as negatives, text only", "new items out of the training softmax vs its negatives (and the machine)"),
    ("LLMEmbSASRec, new items as negatives", "SASRec, new items as negatives", "the LM's table and alignment, and 20 more epochs (warm start)"),
    ("LLMEmbSASRec, new items as negatives", "LLMEmbSASRec, new items as negatives, no text (random vectors)", "the text, with new items as negatives"),
    ("LLMEmbSASRec, new items as negatives, neighbours' ids", "LLMEmbSASRec, new items as negatives", "new items' id offsets: their text neighbours' vs zero"),
    ("LLMEmbSASRec, new items as negatives, id dropout", "LLMEmbSASRec, new items as negatives", "id offsets dropped in training (0.5) vs kept"),
    ("LLMEmbSASRec, new items as negatives, text score on tail items", "LLMEmbSASRec, new items as negatives", "the learned text term on tail items, with new items as negatives"),
    ("LLMEmbSASRec, new items as negatives, text only", "LLMEmbSASRec, new items as negatives", "the table: text only vs text plus id rows, with new items as negatives"),
]
#: measured facts about runs that left no row (stopped, or analyses), kept with the tables
NOTES = [
    "LLMEmbSASRec warm, text only (the defaults of commit 'RAT defaults: warm start ...': official adapter, "
    "rat_init=collaborative, InfoNCE alignment alpha 0.1, no id table), 2026-11-27, stopped after 4 of 20 epochs "
    "to free the CPU: adapter fit R^2 0.131; validation NDCG@10 per epoch 0.0209, 0.0239, 0.0245, 0.0261 (SASRec "
    "row: 0.0096, 0.0142, ... 0.0509 at its best epoch; the old default's run of 2026-11-26: 0.0085, 0.0120, "
    "0.0145, 0.0173, ... 0.0367 at epoch 20).",
    "Which part of the text-plus-id table rare items rank by (benchmarks/probes/probe_id_shrinkage.py on the "
    "'LLMEmbSASRec warm + id' checkpoint, no retraining; results in benchmarks/results/probes/id_shrinkage.json), "
    "test NDCG@10 overall / tail: as trained 0.0416 / 0.0238; each item's id offset shrunk by n/(n+k) "
    "(n its training count): k=3 0.0397 / 0.0138, k=10 0.0361 / 0.0058, k=30 0.0303 / 0.0025; the adapted "
    "text part scaled by s: s=0.5 0.0371 / 0.0211, s=1.5 0.0404 / 0.0239, s=2 0.0359 / 0.0221, s=3 0.0279 / "
    "0.0197. Rare items rank by their id offsets, not by their text alone (shrinking them towards the text "
    "empties the top-10 lists of tail items: tail share 38.5% -> 6.4% at k=10); the trained balance of text "
    "and id is the best of these on validation too.",
    "How much of the SASRec row's item table the SCFT text vectors explain (ridge regression with intercept of "
    "the 64-d SASRec vectors on the centred 384-d text vectors, 12,101 items): R^2 0.133 in-sample (the warm "
    "start's fitted adapter reached 0.131: converged), 0.08 on a held-out fifth of the items. A frozen-text item "
    "table cannot reproduce the collaborative geometry on Beauty with the packaged MiniLM; text can add to ids.",
    "The text alone, no recommender (benchmarks/probes/probe_text_vectors.py, benchmarks/results/probes/text_vectors.json, "
    "2026-11-28): each test user's next item ranked among all items by the cosine of its text vector to the mean of "
    "the user's last 3 items', test NDCG@10 overall / head / tail: SCFT vectors centred 0.0254 / 0.0177 / 0.0313, "
    "whitened 0.0350 / 0.0255 / 0.0422; the packaged MiniLM without SCFT centred 0.0331 / 0.0257 / 0.0389, "
    "whitened 0.0403 / 0.0309 / 0.0475 (shrinkage whitening = whitening to 3 decimals). SASRec: 0.0416 / 0.0677 / "
    "0.0217. The text ranks tail items twice as well as SASRec, and SCFT's 150 steps weaken that signal "
    "(more SCFT is not the lever; row 'LLMEmbSASRec plain vectors' tests the recommender on the plain vectors).",
    "The text score added to the trained LLMEmbSASRec's scores after training (benchmarks/probes/probe_text_fusion.py, "
    "z(model) + beta * z(text cosine), SCFT vectors whitened, last 3 items; benchmarks/results/probes/text_fusion.json), "
    "test NDCG@10 overall / tail: beta 0 0.0416 / 0.0238, 0.05 0.0405 / 0.0251, 0.1 0.0392 / 0.0258, 0.25 0.0360 / "
    "0.0273, 0.5 0.0317 / 0.0283: it trades head for tail; no beta gives 1.0x overall and 1.2x tail together.",
    "Two-epoch screens (benchmarks/results/probes/rat_screens.json; 1 thread beside another job), validation NDCG@10 "
    "after 2 epochs overall / tail, default 0.0505 / 0.0235: text match (learned weight, start 5) 0.0475 / 0.0234, its "
    "weight falling to 4.3; text match with a fast weight and per-user gate (start 2) 0.0491 / 0.0229, weight falling to "
    "1.1; shrinkage-whitened adapter input 0.0501 / 0.0230. Cross-entropy does not want the text score: it is "
    "dominated by head targets, and the text's tail signal costs head likelihood. Not run as 20-epoch rows.",
]
NOTES.append(
    "Per-user gates for the blend (benchmarks/probes/probe_text_fusion.py --gate, plain-vector text, the 'warm + id' "
    "checkpoint; benchmarks/results/probes/text_fusion.json), validation / test NDCG@10 overall, test tail; no gate "
    "(beta 0) 0.0521 / 0.0416, 0.0238. Gate 'tail' (beta x share of tail items among the last 3): beta 0.1 0.0523 / "
    "0.0431, 0.0260; 0.2 0.0524 / 0.0441, 0.0279; 0.3 0.0526 / 0.0441, 0.0286 (best on validation); 0.5 0.0519 / "
    "0.0437, 0.0298. Gate 'entropy' (beta x normalised entropy of the model's softmax): 0.1 0.0502 / 0.0408, 0.0251; "
    "0.3 0.0462 / 0.0387, 0.0269: worse than no gate. Control, the SASRec row's checkpoint with the same tail-gated "
    "plain-text blend at 0.3: 0.0514 / 0.0442, 0.0270 (1.06x / 1.24x its own figures): the gated blend lifts SASRec "
    "as much overall; the LM table keeps a tail edge over it (0.0287 vs 0.0270 on plain vectors).")
NOTES.append(
    "2026-11-28: the inference blend with the text became the default (text_blend 0.3, gated by the share of tail "
    "items among the user's last 3; props/paper.yaml blends every user alike). Rows that ran before it were relabelled "
    "(', no blend'; their records keep the old label under 'relabelled' and the settings as run under "
    "'overrides_when_run') and their settings now carry text_blend=0, which reproduces them. The 'default' rows evaluate a no-blend row's checkpoint with the blend (inference only; a "
    "model trained under the new defaults picks its best epoch on blended validation scores instead). The choice, on "
    "validation NDCG@10: full ranking, SCFT text, 0.0517 with the blend vs 0.0521 without (tail 0.0284 vs 0.0261); "
    "paper protocol 0.3755 ungated vs 0.3613 gated vs 0.3370 without.")
NOTES.append(
    "SAIDSASRec under the paper protocol on this CPU (2026-11-28), not a row: 'SAIDSASRec default paper, no blend' was "
    "stopped after 15 of 20 epochs (3.6 min an epoch; validation NDCG@10 0.3194 at epoch 0, best 0.3277 at epochs 9 and "
    "14, still level) for the session's end; its best checkpoint evaluated (eval_checkpoint): no blend test NDCG@10 "
    "0.2885, tail 0.1651 (1.00x / 1.03x SASRec paper), validation 0.3266 (runs/SAIDSASRec-amazon-beauty-20261128-113109-"
    "0205ab.json); with the default blend (props/paper.yaml, 0.3 ungated) 0.2794 / 0.1633 (0.97x / 1.02x), validation "
    "0.3163 (runs/...-112752-169e18.json). The blend's text score uses the method's own vectors: SAID's are learned "
    "soft-token vectors, not text-similarity vectors, and blending them hurts; next: the blend from the plain LM "
    "vectors for every method.")
NOTES.append(
    "2026-11-28 (fifth session): the blend's text cosine comes from the packaged MiniLM's plain vectors by default "
    "(text_blend_vectors: plain; own = the vectors the model reads). Chosen on validation NDCG@10 (overall / tail) of "
    "the default checkpoints: full ranking 0.0526 / 0.0307 plain vs 0.0517 / 0.0284 own (SCFT); paper protocol "
    "0.3809 / 0.2537 plain vs 0.3755 / 0.2446 own. The rows that ran with own vectors were relabelled ', own-vector "
    "blend' (records keep 'relabelled' and 'overrides_when_run'); the plain-vector rows became the 'default' rows.")
NOTES.append(
    "SAIDSASRec under the paper protocol, 2026-11-28 (fifth session, CPU, 1 thread beside other jobs): the no-blend row "
    "ran all 20 epochs (best epoch 19, validation 0.3301: still improving, like SASRec paper). Its checkpoint with the "
    "blend, validation NDCG@10 overall / tail: plain MiniLM vectors 0.3780 / 0.2493, SAID's own vectors 0.3196 / 0.1659, "
    "no blend 0.3313 / 0.1687 (the partial run's note above: own vectors hurt). Plain is the default for every method.")
#: SASRec rows trained as the alignment stage (as the baselines are), so a plugin row with the same settings reuses them
STAGE_ROWS = {"SASRec, hidden 128"}
BASELINE = {"full": "SASRec", "paper": "SASRec paper", "full, checkpoints at uni100": "SASRec @uni100",
            "new items": "SASRec, new items", "new items as negatives": "SASRec, new items as negatives"}
PAIRS = {"GRU4Rec": "GRU4Rec", "BERT4Rec": "BERT4Rec"}  # plugin rows of these backbones compare with these rows
KEYS = ("overall ndcg@10", "tail-item ndcg@10", "short-user ndcg@10", "overall hit@10", "tail-item hit@10")


def row_file(label):
    return os.path.join(ROWS_DIR, label.replace(" ", "_").replace("+", "plus") + ".json")


def machine():
    name = f"{platform.machine()} {os.cpu_count()} CPUs"
    try:
        import torch

        name += f", AMX {torch.cpu._is_amx_tile_supported()}"
        if torch.cuda.is_available():
            name += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return name


def git_commit():
    if os.environ.get("BENCH_COMMIT"):  # a copy of the tree without .git (a lent GPU machine)
        return os.environ["BENCH_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def checkpoint_of(label):
    """The checkpoint of a row that has run (``{ckpt:LABEL}`` in another row's settings)."""
    with open(row_file(label)) as f:
        results = json.load(f)["results_file"]
    with open(os.path.join(ROOT, results)) as f:
        return json.load(f)["checkpoint"]


def used_by(model, overrides, key):
    """Whether a ``--set`` key applies to a row: a RecBole model refuses the plugin's and, without the
    re-ranker, the language model's settings (``--set=llm_path=...`` on a lent GPU serves every row)."""
    from recbole_llmemb.pipeline.checks import plugin_model_keys, text_keys
    from recbole_llmemb.model import MODELS

    if model in MODELS:
        return True
    reranked = re.search(r"text_blend=(?!0(?:\.0*)?(?:,|$))", overrides) is not None
    return key not in plugin_model_keys() and (reranked or key not in text_keys())


def command(label, args):
    protocol, model, overrides, _ = ROWS[label]
    common = [f"--dataset={args.dataset}", f"--data_path={args.data_path}", f"--config_files={','.join(PROTOCOLS[protocol])}"]
    common += [f"--{kv}" for kv in args.set.split(",") if kv and used_by(model, overrides, kv.split("=", 1)[0])]
    overrides = re.sub(r"\{ckpt:([^}]+)\}", lambda m: checkpoint_of(m.group(1)), overrides)
    extra = [f"--{kv}" for kv in re.split(r",(?![^{]*\})", overrides) if kv]
    if (label == BASELINE[protocol] and protocol != "full, checkpoints at uni100") or label in STAGE_ROWS:
        # the alignment SASRec stage: its results file is the SASRec row, and the plugin rows with the same settings reuse it
        return [PY, "-m", "recbole_llmemb.pipeline.collaborative", "--model=LLMEmbSASRec"] + common + extra
    return [PY, "run_recbole_llmemb.py", f"--model={model}"] + common + extra


def run_logged(name, argv, args):
    """Run ``argv`` with its output in the log ``name``; ``(seconds, peak RSS in MiB, output)``, or exit."""
    log_dir = os.path.join(ROOT, "benchmarks", "results", "logs", *([args.tag] if args.tag else []))
    os.makedirs(log_dir, exist_ok=True)
    log = os.path.join(log_dir, name + ".log")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads)) if args.threads else dict(os.environ)
    print(f"[bench] {name}: {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"[bench] {name} failed; see {log}")
    with open(log) as f:
        return seconds, usage.ru_maxrss / 1024, f.read()


def run_row(label, args):
    argv = command(label, args)
    seconds, peak_mb, text = run_logged(os.path.basename(row_file(label))[:-5], argv, args)
    marker = "SASRec results: " if argv[1] == "-m" else "results file: "
    found = [line.split(marker, 1)[1].strip() for line in text.splitlines() if line.startswith(marker)]
    if not found:
        sys.exit(f"[bench] {label}: no results file named in its log:\n{text[-2000:]}")
    record = {
        "label": label, "protocol": ROWS[label][0], "model": ROWS[label][1], "overrides": ROWS[label][2],
        "what": ROWS[label][3], "command": " ".join(os.path.relpath(a, ROOT) if a == PY else a for a in argv),
        "threads": args.threads or "default", "wall_seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb, 1), "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(), "results_file": os.path.relpath(found[-1], ROOT),
        "alignment_sasrec_reused": "collaborative SASRec: reused" in text,
    }
    os.makedirs(ROWS_DIR, exist_ok=True)
    with open(row_file(label), "w") as f:
        json.dump(record, f, indent=2)
    print(f"[bench] {label}: {seconds:.0f}s -> {record['results_file']}", flush=True)


STORES_DIR = os.path.join(ROOT, "benchmarks", "results", "stores")


def stage_name(method, args):
    """``stage-METHOD-PROTOCOL``, with the model's name when ``--set`` picks one (``llm_path=SmolLM2-135M``)."""
    model = dict(kv.split("=", 1) for kv in args.set.split(",") if "=" in kv).get("llm_path")
    return f"stage-{method}-{args.protocol}" + (f"-{os.path.basename(model.rstrip('/'))}" if model else "")


def run_stage(method, args):
    """Stage 1 alone (``python -m recbole_llmemb.pipeline.generate``): its wall time, peak host and GPU memory."""
    argv = [PY, "-m", "recbole_llmemb.pipeline.generate", f"--method={method}", f"--dataset={args.dataset}",
            f"--data_path={args.data_path}", f"--config_files={','.join(PROTOCOLS[args.protocol])}"]
    argv += [f"--{kv}" for kv in args.set.split(",") if kv]
    seconds, peak_mb, text = run_logged(stage_name(method, args), argv, args)
    status = re.search(r"^(built|reused): (\S+)", text, re.M)
    gpu = re.search(r"^peak GPU memory: (\d+) MiB", text, re.M)
    record = {"method": method, "protocol": args.protocol, "status": status.group(1) if status else None,
              "store": os.path.relpath(status.group(2), ROOT) if status else None,
              "command": " ".join(os.path.relpath(a, ROOT) if a == PY else a for a in argv),
              "threads": args.threads or "default", "wall_seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb, 1),
              "peak_gpu_mib": int(gpu.group(1)) if gpu else None, "commit": git_commit(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    meta = {}
    if record["store"]:
        with open(os.path.join(ROOT, record["store"], "meta.json")) as f:
            meta = json.load(f)
    stats = meta.get(method, {})
    resumed = re.search(r"resuming at epoch \d+, step (\d+) \(.*?, (\d+)s of training so far\)", text)
    if resumed:  # a stage stopped before (its progress saved) and finished by this run: its whole training time
        record.update(resumed_at_step=int(resumed.group(1)), training_seconds_all_sittings=stats.get("seconds"))
    # did the stage learn? its own measure against the baseline that knows nothing of the item or user
    learned = re.findall(r"^.*(?:loss [\d.]+ vs .*baseline.*)$", text, re.M)
    if learned:
        record["learned"] = learned[-1].split(" INFO ", 1)[-1].strip()
    if meta:  # the store's record, its item tokens left out, beside the row records
        os.makedirs(STORES_DIR, exist_ok=True)
        with open(os.path.join(STORES_DIR, f"{os.path.basename(record['store'])}.meta.json"), "w") as f:
            json.dump({k: v for k, v in meta.items() if k != "tokens"}, f, indent=2)
    os.makedirs(ROWS_DIR, exist_ok=True)
    with open(os.path.join(ROWS_DIR, stage_name(method, args) + ".json"), "w") as f:
        json.dump(record, f, indent=2)
    print(f"[bench] stage {method} ({args.protocol}): {record['status']} in {seconds:.0f}s", flush=True)


def stage_model(record):
    """`` (MODEL)`` when the stage's command picked a language model, else nothing."""
    m = re.search(r"--llm_path=(\S+)", record["command"])
    return f" ({os.path.basename(m.group(1).rstrip('/'))})" if m else ""


def stage_lines():
    records = []
    for name in sorted(os.listdir(ROWS_DIR)) if os.path.isdir(ROWS_DIR) else []:
        if name.startswith("stage-"):
            with open(os.path.join(ROWS_DIR, name)) as f:
                records.append(json.load(f))
    if not records:
        return []
    lines = ["## Stage 1: the generators alone (`bench_recommenders.py stage METHOD`)", "",
             "| method | protocol | store | wall s | peak host MiB | peak GPU MiB | machine | commit |", "|---" * 8 + "|"]
    lines += [f"| {r['method']}{stage_model(r)} | {r['protocol']} | {r['status']} | {r['wall_seconds']:.0f}"
              + (f" (this sitting, resumed at step {r['resumed_at_step']}; training over all sittings "
                 f"{r['training_seconds_all_sittings']:.0f})" if r.get("resumed_at_step") is not None else "")
              + f" | {r['peak_rss_mb']:.0f} | "
              f"{fmt(r['peak_gpu_mib'], 'd')} | {r['machine']} | {r['commit']} |" for r in records]
    return lines + [""]


@functools.lru_cache(maxsize=None)
def _test_block(results_file):
    with open(os.path.join(ROOT, results_file)) as f:
        return json.load(f)["test"]


def test_block(record):
    """A row's test evaluation block, read once per report (a baseline is compared with many rows)."""
    return _test_block(record["results_file"])


def paired(row, base):
    """``{metric: {group: entry}}`` of ``row`` against ``base`` with 95% paired bootstrap intervals (the
    cells ``ratio_cells`` shows: NDCG@10 overall and tail, Hit@10 overall), or ``None`` when either ran
    before results files kept per-user ranks."""
    from recbole_llmemb.evaluation.paired import compare_blocks

    a, b = test_block(row), test_block(base)
    if "per_user" not in a or "per_user" not in b:
        return None
    return {"ndcg@10": compare_blocks(a, b, "ndcg@10", groups=("overall", "item_tail")),
            "hit@10": compare_blocks(a, b, "hit@10", groups=("overall",))}


def ratio_cells(row, base):
    """NDCG@10 overall / tail and Hit@10 ratios, each with its interval where both rows have per-user ranks."""
    from recbole_llmemb.evaluation.paired import format_ratio

    cmp = paired(row, base)
    if cmp is None:
        return [f"{row[k] / base[k]:.2f}x" if base[k] else "-" for k in ("overall ndcg@10", "tail-item ndcg@10", "overall hit@10")]
    return [format_ratio(cmp["ndcg@10"]["overall"]), format_ratio(cmp["ndcg@10"]["item_tail"]),
            format_ratio(cmp["hit@10"]["overall"])]


#: the rows run under more than one seed (``run ROW --set=seed=N --tag=seedN``)
SEEDED = ("SASRec", "LLMEmbSASRec")


def seed_lines():
    """SASRec and LLMEmbSASRec under every seed run (rows-seedN/ beside rows/, seed 2020), each seed's
    paired ratio and the mean and standard deviation over seeds."""
    import statistics

    folders = {2020: ROWS_DIR} if os.path.isdir(ROWS_DIR) else {}
    parent, base = os.path.split(ROWS_DIR)
    for name in sorted(os.listdir(parent)):
        if name.startswith(base + "-seed") and name[len(base) + 5:].isdigit():
            folders[int(name[len(base) + 5:])] = os.path.join(parent, name)
    by_seed = {}
    for seed, folder in sorted(folders.items()):
        records = {}
        for label in SEEDED:
            path = os.path.join(folder, os.path.basename(row_file(label)))
            if os.path.isfile(path):
                with open(path) as f:
                    records[label] = summary(json.load(f))
        if len(records) == len(SEEDED):
            by_seed[seed] = records
    if len(by_seed) < 2:
        return []
    lines = ["## Seeds: SASRec and LLMEmbSASRec (full ranking)", "",
             "| seed | SASRec NDCG@10 / tail | LLMEmbSASRec NDCG@10 / tail | ratio NDCG@10 | ratio tail |", "|---" * 5 + "|"]
    values = {k: [] for k in ("sas", "sas_tail", "llm", "llm_tail")}
    for seed, rec in by_seed.items():
        sas, llm = rec["SASRec"], rec["LLMEmbSASRec"]
        cells = ratio_cells(llm, sas)
        lines.append(f"| {seed} | {sas['overall ndcg@10']:.4f} / {sas['tail-item ndcg@10']:.4f} | "
                     f"{llm['overall ndcg@10']:.4f} / {llm['tail-item ndcg@10']:.4f} | {cells[0]} | {cells[1]} |")
        for key, row, metric in (("sas", sas, "overall"), ("sas_tail", sas, "tail-item"), ("llm", llm, "overall"),
                                 ("llm_tail", llm, "tail-item")):
            values[key].append(row[f"{metric} ndcg@10"])
    ms = {k: (statistics.mean(v), statistics.stdev(v)) for k, v in values.items()}
    lines.append(f"| mean ± sd ({len(by_seed)} seeds) | {ms['sas'][0]:.4f} ± {ms['sas'][1]:.4f} / {ms['sas_tail'][0]:.4f} ± "
                 f"{ms['sas_tail'][1]:.4f} | {ms['llm'][0]:.4f} ± {ms['llm'][1]:.4f} / {ms['llm_tail'][0]:.4f} ± "
                 f"{ms['llm_tail'][1]:.4f} | {ms['llm'][0] / ms['sas'][0]:.2f}x | {ms['llm_tail'][0] / ms['sas_tail'][0]:.2f}x |")
    return lines + [""]


def like_for_like_lines(by_label):
    """The headline: pairs of rows that differ in one thing, each ratio with its paired interval."""
    lines = ["## Like for like: pairs of rows that differ in one thing", "",
             "Ratios of the first row to the second with 95% paired bootstrap intervals over the test users "
             "(`recbole_llmemb/evaluation/paired.py`); a ratio without an interval compares rows that ran before "
             "results files kept each user's ranks.", "",
             "| row | against | what differs | NDCG@10 | tail NDCG@10 | Hit@10 |", "|---" * 6 + "|"]
    for a, b, what in LIKE_FOR_LIKE:
        if a in by_label and b in by_label:
            lines.append(f"| {a} | {b} | {what} | " + " | ".join(ratio_cells(by_label[a], by_label[b])) + " |")
    return lines + [""]


def new_items_lines(by_label):
    """The new-items rows: NDCG@10 on the held-out items beside the other items' (item cold start)."""
    rows = [r for r in by_label.values() if r["protocol"] in ("new items", "new items as negatives")]
    if not rows:
        return []
    d = rows[0]["definition"]
    lines = ["## New items: 10% of the items held out of training (`new_items: 0.1`)", "",
             "Median rank: of the new-item test targets in the whole ranking (1 = first; "
             f"{d.get('n_new_items', 0)} new items, {d['n_head_items'] + d['n_tail_items'] + d.get('n_new_items', 0)} "
             "items in all); '-' for "
             "rows that ran before results kept it. 'as negatives': held out of training but kept in its softmax.", "",
             "| row | NDCG@10 | new items NDCG@10 | other items NDCG@10 | new / other | Hit@10 new items | median rank, new items |",
             "|---" * 7 + "|"]
    for r in rows:
        new, other = r.get("new-item ndcg@10"), r.get("other-item ndcg@10")
        share = f"{new / other:.2f}" if new is not None and other else "-"
        rank = r.get("new-item median rank")
        lines.append(f"| {r['label']} | {fmt(r['overall ndcg@10'])} | {fmt(new)} | {fmt(other)} | {share} | "
                     f"{fmt(r.get('new-item hit@10'))} | {'-' if rank is None else f'{rank:.0f}'} |")
    return lines + [""]


def summary(record):
    with open(os.path.join(ROOT, record["results_file"])) as f:
        r = json.load(f)
    test, groups = r["test"], r["test"]["groups"]
    row = dict(record)
    row.update({"epochs_run": len(r["history"]), "best_valid_epoch": r["best_valid_epoch"],
                "epoch_seconds": r["timing"]["epoch_seconds_mean"], "mode": r["protocol"]["mode"],
                "diagnostics": test.get("diagnostics", {}), "definition": test["definition"],
                "sizes": {"test_users": test["n_rows"], "tail_items": groups["item_tail"]["size"]}})
    for m in ("hit@10", "ndcg@10"):
        row[f"overall {m}"] = test["overall"][m]
        row[f"tail-item {m}"] = groups["item_tail"]["metrics"][m]
        row[f"short-user {m}"] = groups["user_short"]["metrics"][m]
    if "item_new" in groups:  # new items beside the others (head and tail together, per target)
        from recbole_llmemb.evaluation.paired import per_user_values

        for m in ("hit@10", "ndcg@10"):
            row[f"new-item {m}"] = groups["item_new"]["metrics"][m]
            values = per_user_values(test, m)
            others = list(values["item_head"].values()) + list(values["item_tail"].values())
            row[f"other-item {m}"] = sum(others) / len(others)
        row["new-item median rank"] = groups["item_new"].get("median_rank")
    losses = [h.get("losses", {}) for h in r["history"] if h.get("losses", {}).get("align") is not None]
    if losses:
        row["align_first_last"] = (round(losses[0]["align"], 3), round(losses[-1]["align"], 3))
    return row


def baseline_of(label):
    """The row a row's ratios are taken against: its backbone's baseline, re-ranked alike when it is."""
    protocol, model, overrides, _ = ROWS[label]
    base = next((b for backbone, b in PAIRS.items() if backbone in model and label != b), BASELINE[protocol])
    if "mask_history=True" in overrides and f"{base}, history masked" in ROWS and label != f"{base}, history masked":
        base = f"{base}, history masked"  # a masked row against the baseline masked alike
    return base + " + re-ranker" if label.endswith(" + re-ranker") and label != base + " + re-ranker" else base


def fmt(v, spec=".4f"):
    return "-" if v is None else format(v, spec)


def report(args):
    rows = []
    for label in ROWS:
        if os.path.isfile(row_file(label)):
            with open(row_file(label)) as f:
                rows.append(summary(json.load(f)))
    by_label = {r["label"]: r for r in rows}
    tag = f" --tag={args.tag}" if args.tag else ""
    lines = [f"# Recommenders on {args.dataset}: baselines vs plugin models" + (f" ({args.tag})" if args.tag else ""), "",
             f"Made by `python benchmarks/bench_recommenders.py run ROW{tag}` per row and `... report{tag}` (each row's own "
             f"command, commit, machine, threads and time are in `{os.path.relpath(ROWS_DIR, ROOT)}/`).", "",
             "Common configuration: benchmarks/beauty.yaml (history 20, batch 1024, 20 epochs, seed 2020; every "
             "model, and the alignment SASRec); paper protocol adds props/paper.yaml (100 sampled negatives at "
             "evaluation, BPR with one sampled negative, hidden 128). No row is re-ranked unless its label says "
             "'+ re-ranker' (props/rerank.yaml at evaluation only; under the paper's protocol every user alike).", ""]
    lines += like_for_like_lines(by_label)
    lines += new_items_lines(by_label)
    if not args.tag:
        lines += seed_lines()
    for protocol in PROTOCOLS:
        block = [r for r in rows if r["protocol"] == protocol]
        if not block:
            continue
        mode = block[0]["mode"]["test"] if isinstance(block[0]["mode"], dict) else block[0]["mode"]
        lines += [f"## Protocol: {protocol} (test ranking: {mode})", "",
                  "| row | settings that differ | NDCG@10 | tail NDCG@10 | short-user NDCG@10 | Hit@10 | "
                  "vs baseline: NDCG / tail / Hit | eff. rank | near-dup | coverage@10 | tail share@10 | mean pop@10 | "
                  "align loss first -> last | s/epoch (threads) | epochs (best) |",
                  "|---" * 15 + "|"]
        for r in block:
            base = by_label.get(baseline_of(r["label"]))
            ratio = "-"
            if base and base is not r:
                ratio = " / ".join(ratio_cells(r, base))
            d = r["diagnostics"]
            align = r.get("align_first_last")
            lines.append(
                f"| {r['label']} | {r['overrides'] or '-'} | {fmt(r['overall ndcg@10'])} | {fmt(r['tail-item ndcg@10'])} | "
                f"{fmt(r['short-user ndcg@10'])} | {fmt(r['overall hit@10'])} | {ratio} | {fmt(d.get('effective_rank'), '.1f')} | "
                f"{fmt(d.get('near_duplicate_share'), '.3f')} | {fmt(d.get('coverage@10'), '.3f')} | {fmt(d.get('tail_share@10'), '.3f')} | "
                f"{fmt(d.get('mean_popularity@10'), '.0f')} | {f'{align[0]} -> {align[1]}' if align else '-'} | "
                f"{fmt(r['epoch_seconds'], '.1f')} ({r['threads']}) | {r['epochs_run']} ({r['best_valid_epoch']}) |")
        lines.append("")
    lines += stage_lines()
    if rows:
        d = rows[0]["definition"]
        lines += [f"Test users: {rows[0]['sizes']['test_users']}; tail items: outside the top {int(d['head_ratio'] * 100)}% by "
                  f"training count ({d['n_tail_items']} items, {rows[0]['sizes']['tail_items']} test targets); short users: at most "
                  f"{d['user_short_threshold']} training interactions.", "",
                  "What each row tests:", ""]
        lines += [f"- **{r['label']}**: {r['what']}. Ran on {r['date']} at commit {r['commit']} ({r.get('machine', '?')}), {r['threads']} thread(s), "
                  f"{r['wall_seconds']:.0f} s wall, peak {r['peak_rss_mb']:.0f} MiB." for r in rows]
    if not args.tag:
        lines += ["", "Notes from earlier sessions (measured on the code of their day: before 2026-12-01 the re-ranker, "
                  "then called the blend, was inside the plugin's models and on by default; the archived rows and "
                  "report are in `benchmarks/results/archive/`):", ""] + [f"- {n}" for n in NOTES]
    suffix_tag = f"-{args.tag}" if args.tag else ""
    out = os.path.join(ROOT, "benchmarks", "results", f"recommenders-{args.dataset}{suffix_tag}")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(out + ".json", "w") as f:
        json.dump({"dataset": args.dataset, "rows": rows}, f, indent=2)
    print("\n".join(lines))
    from recbole_llmemb.pipeline.report import write_report

    for protocol, suffix in (("full", ""), ("full, checkpoints at uni100", "-uni100"), ("paper", "-paper")):
        files = [os.path.join(ROOT, r["results_file"]) for r in rows if r["protocol"] == protocol]
        if files:
            folder = os.path.join(ROOT, "benchmarks", "results", f"report-{args.dataset}{suffix}{suffix_tag}")
            shutil.rmtree(folder, ignore_errors=True)
            print(f"[bench] report: {write_report(files, folder, baseline=files[0])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["run", "stage", "report"])
    ap.add_argument("rows", nargs="*", help="row labels (default: every row without a record), or stage methods")
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    ap.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for each row (0: torch's default)")
    ap.add_argument("--tag", default="", help="another machine's rows: rows-TAG/, recommenders-<dataset>-TAG.md")
    ap.add_argument("--set", default="", help="key=value,... added to every command")
    ap.add_argument("--protocol", default="full", choices=["full", "paper"], help="stage: the protocol's config files")
    args = ap.parse_args()
    global ROWS_DIR
    if args.tag:
        ROWS_DIR = f"{ROWS_DIR}-{args.tag}"
    if args.action == "stage":
        for method in args.rows:
            run_stage(method, args)
        return None
    if args.action == "report":
        return report(args)
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        sys.exit(f"unknown row(s) {unknown}; rows: {list(ROWS)}")
    for label in args.rows or [r for r in ROWS if not os.path.isfile(row_file(r))]:
        run_row(label, args)


if __name__ == "__main__":
    main()
