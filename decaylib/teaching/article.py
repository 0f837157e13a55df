"""The source article, its map to the notebooks, and a bilingual glossary (notebook 00).

The tutorial teaches, checks and corrects the method of the article
"电商平台中的用户兴趣衰减模型" (*User interest decay models on e-commerce platforms*). This module
holds, as data that tests can check, what the article says, where each of its sections, formulas
and FAQ answers is taken up in the notebooks, and the verdict: ``"as in the article"``,
``"corrected"`` (the article is wrong and the notebook shows it), ``"completed"`` (the article is
right but incomplete and the notebook adds what is missing) or ``"discussed, not demonstrated"``.
"""

from __future__ import annotations

import pandas as pd

from decaylib.schema import PURCHASE

__all__ = ['TITLE_ZH', 'TITLE_EN', 'ARTICLE_STEPS', 'VERDICTS', 'article_map', 'glossary', 'notebooks_linked']

TITLE_ZH = "电商平台中的用户兴趣衰减模型"

TITLE_EN = "User interest decay models on e-commerce platforms"

#: The article's method in its own order.
ARTICLE_STEPS = (
    "Data: collect users' browsing, clicks, add-to-cart, purchases and recommendation impressions; clean noise "
    "and outliers (mean and median filters), standardize, engineer features, log-transform.",
    "Model: an LSTM (or GRU / RNN) forecasts the interest I(t+Δt) from the recent window; hyperparameters hidden "
    "size 128, 50 epochs, batch size 32.",
    "Training: a train/validation split, validation metrics, cross-validation, guarding against overfitting.",
    "Decay rate: interest follows I(t) = I0·e^(−λt), so λ = −(1/Δt)·ln(I(t+Δt)/I(t)); half-life ln 2/λ.",
    "Decay point: the time at which interest turns from rising to falling, to be predicted ahead of time.",
    "Strategy: stop pushing what the user has lost interest in, bring in fresh items, time promotions.",
    "Iteration: tune, compare, explain, and keep up with new events (incremental updates).",
)

VERDICTS = ("as in the article", "corrected", "completed", "discussed, not demonstrated")

_MAP = [
    # (part, what the article says, notebook file, section, verdict, what the tutorial shows)
    ("§1 Data", "collect views, clicks, carts, purchases, recommendation impressions",
     "01_synthetic_events.ipynb", "1. The idea; 2. What the raw log looks like", "completed",
     "a simulator with known ground truth (every later number is checked against it) and real logs in 08"),
    ("§1 Data", "clean noise and outliers", "02_preprocessing.ipynb", "2. Clean, aggregate, score", "completed",
     "duplicates, bots (median/MAD), logging outages and far-off timestamps, each removal reported and scored"),
    ("§1 Data", "mean and median filters", "02_preprocessing.ipynb", "4. Noise filters", "completed",
     "a centered filter sees the future: only for looking back, never as a forecaster's input"),
    ("§1 Data", "log transform log(x + 1e-8)", "02_preprocessing.ipynb", "5. Log transform and standardization",
     "corrected", "log1p instead: log(0 + 1e-8) = −18.4 turns every zero day into an outlier"),
    ("§1 Data", "standardize the features", "02_preprocessing.ipynb", "5. Log transform and standardization",
     "corrected", "fitted on training users only, or the test users leak into the model"),
    ("§2 Model", "an LSTM forecasts I(t+Δt) from the recent window", "03_forecasting.ipynb",
     "1. The idea; 3. Train the main model", "as in the article", "and checked against persistence, a moving "
     "average and an exponential fit, on the observed score and on the true interest"),
    ("§2 Model", "the 'LSTM formula' Î(t+1) = Σ_k w_k·I(t−k) + b", "03b_forecasting_advanced.ipynb",
     "3. The article's formula is a linear autoregression", "corrected",
     "that formula is a linear autoregression, not an LSTM; fitted and compared with the network"),
    ("§2 Model", "a softmax output layer", "03b_forecasting_advanced.ipynb",
     "3. The article's formula is a linear autoregression", "corrected",
     "a softmax turns scores into class probabilities; interest is one non-negative number per day"),
    ("§2 Model", "GRU and plain RNN as options", "03b_forecasting_advanced.ipynb", "2. LSTM, GRU or plain RNN?",
     "as in the article", "the three cells on the same budget and the same test users"),
    ("§2 Model", "hyperparameters: hidden 128, 50 epochs, batch 32", "03b_forecasting_advanced.ipynb",
     "5. A small hyperparameter sweep", "completed",
     "hidden size tuned on validation users, epochs decided by early stopping (exercise 3 tries the article's values)"),
    ("§2 Model", "the sample code", "03_forecasting.ipynb", "Pitfalls in the article's code", "corrected",
     "wrong tensor layout for nn.LSTM, a Dataset indexing a DataFrame by position, the model called on a NumPy "
     "array, log of zero patched with 1e-8"),
    ("§3 Training", "train/validation split, validation metrics", "03_forecasting.ipynb",
     "2. Windows and a split by user", "corrected", "split by user, not by random window: overlapping windows "
     "of one pair in both sets make the validation optimistic"),
    ("§3 Training", "cross-validation", "03_forecasting.ipynb", "6. Cross-validation by user groups",
     "completed", "folds of users; the fold models also give cross-fitted forecasts for every user"),
    ("§3 Training", "guard against overfitting", "03_forecasting.ipynb", "3. Train the main model",
     "as in the article", "early stopping on validation users with the best weights restored"),
    ("§4 Decay rate", "I(t) = I0·e^(−λt), λ = −(1/Δt)·ln(I(t+Δt)/I(t)), half-life ln 2/λ", "04_decay_rate.ipynb",
     "1. The formula, step by step", "as in the article", "exact on a clean exponential"),
    ("§4 Decay rate", "λ from two observations", "04_decay_rate.ipynb", "3. Seven ways to estimate λ; 4. Estimated "
     "against true λ", "corrected", "on noisy daily counts one log-ratio is fragile; Poisson maximum likelihood "
     "and the Cramér-Rao bound show how well λ can be known, with an interval, or why it cannot"),
    ("§4 Decay rate", "one exponential per user and category", "04_decay_rate.ipynb",
     "7. Where the exponential model is wrong; 8. Pooling pairs", "completed", "Ebbinghaus' data and mixtures "
     "are not one exponential; sparse pairs borrow strength from the population (empirical Bayes)"),
    ("§4 Decay rate", "λ predicts future interest", "04_decay_rate.ipynb", "9. Forecasting counts on held-back days",
     "completed", "forecasts of future counts scored on days the models never saw, against simple baselines"),
    ("§4 Decay rate", "interest decays after a burst, I0·e^(−λt)", "04b_self_exciting.ipynb",
     "1. One burst, and every event starting one; 5. A real log", "completed",
     "the exponential as the kernel of a self-exciting (Hawkes) process: every event restarts the decay; μ, α, β "
     "and r fitted to all pairs at once, β with a profile interval, checked against the truth and compared with "
     "SAR and BG/NBD on the complete Online Retail log"),
    ("§5 Decay point", "the turn from rising to falling", "05_decay_points.ipynb", "2. Looking back", "completed",
     "found after the fact from the smoothed score, scored against the true peak"),
    ("§5 Decay point", "predicted ahead of time", "05_decay_points.ipynb", "3. Looking ahead; How far ahead, then?",
     "corrected", "an alert comes a few days after the peak, not before it; the notebook measures the delay, the "
     "limit any detector has, and a calibrated probability that the turn comes within k days"),
    ("§6 Strategy", "stop pushing faded interests, bring in fresh items", "06_recommendations.ipynb",
     "1. The strategies; 3. What the numbers say", "completed", "decay-aware ranking against popularity, recency "
     "and a tuned half-life, evaluated on the future with paired intervals"),
    ("§6 Strategy", "time promotions", "07_user_report.ipynb", "Advice per category", "completed",
     "a per-user report: keep recommending, time a promotion, re-engage with fresh items or stop, for each category, with the reason in words"),
    ("§7 Iteration", "tune and compare", "03b_forecasting_advanced.ipynb", "5. A small hyperparameter sweep",
     "as in the article", "on validation users; the test users stay untouched by every choice"),
    ("§7 Iteration", "explain the model", "03b_forecasting_advanced.ipynb", "6. Which inputs does the forecaster "
     "lean on?", "completed", "permutation importance, with what it can and cannot say"),
    ("§7 Iteration", "keep up with new events", "03b_forecasting_advanced.ipynb", "7. Keeping up with new events",
     "as in the article", "stale, fine-tuned and retrained models scored on days after the update"),
    ("FAQ", "big data: distributed training", "09_scaling_up.ipynb", "4. Training on several processes",
     "completed", "PyTorch DistributedDataParallel gives one process's update; DuckDB and Spark for the "
     "event-sized steps (sections 1, 5)"),
    ("FAQ", "streaming / incremental updates", "09_scaling_up.ipynb", "3. λ as events stream in", "completed",
     "λ updated one day at a time from a few sufficient statistics, equal to the batch fit"),
    ("FAQ", "ensembles", "03b_forecasting_advanced.ipynb", "4. An ensemble of the fold models", "completed",
     "measured: the mean of the fold models against each member and against the main model"),
    ("FAQ", "data augmentation", "03b_forecasting_advanced.ipynb", "4. An ensemble of the fold models",
     "discussed, not demonstrated", "with thousands of simulated users, more data of the same kind is cheaper "
     "and safer than invented windows"),
    ("FAQ", "does it work on a real shop's data?", "08_real_data.ipynb", "2.-7.", "completed",
     "the Online Retail sample: what transfers, where the data cannot carry a per-pair λ, and a repeat-buyer model"),
]

_GLOSSARY = [
    # (中文, pinyin, English, symbol or decaylib name, notebook where it first appears)
    ("兴趣度", "xìngqù dù", "interest (score)", "I(t), column `interest`", "01"),
    ("用户兴趣", "yònghù xìngqù", "user interest", "a (user, category) pair's I(t)", "01"),
    ("衰减", "shuāijiǎn", "decay", "I(t) = I0·e^(−λt)", "01"),
    ("衰减模型", "shuāijiǎn móxíng", "decay model", "`decaylib.decay.rate`", "04"),
    ("衰减率", "shuāijiǎn lǜ", "decay rate", "λ, column `lam_hat`", "01"),
    ("衰减点", "shuāijiǎn diǎn", "decay point (interest turns from rising to falling)", "`t_peak`, `find_decay_point`", "01"),
    ("半衰期", "bànshuāiqī", "half-life", "ln 2/λ, column `half_life`", "01"),
    ("初始兴趣", "chūshǐ xìngqù", "initial interest", "I0", "01"),
    ("时间间隔", "shíjiān jiàngé", "time step", "Δt", "04"),
    ("浏览次数", "liúlǎn cìshù", "views", "column `view`", "01"),
    ("点击次数", "diǎnjī cìshù", "clicks", "column `click`", "01"),
    ("加购", "jiāgòu", "add to cart", "column `cart`", "01"),
    ("购买", "gòumǎi", PURCHASE, f"column `{PURCHASE}`", "01"),
    ("推荐次数", "tuījiàn cìshù", "recommendation impressions", "column `impression`", "01"),
    ("用户行为数据", "yònghù xíngwéi shùjù", "user behaviour (event) data", "the event log, `load_events`", "01"),
    ("电商平台", "diànshāng píngtái", "e-commerce platform", "", "00"),
    ("推荐系统", "tuījiàn xìtǒng", "recommender system", "`decaylib.recommend.strategies`", "06"),
    ("数据清洗", "shùjù qīngxǐ", "data cleaning", "`preprocess`", "02"),
    ("异常值", "yìchángzhí", "outlier", "bots, far-off timestamps", "02"),
    ("均值滤波", "jūnzhí lǜbō", "mean filter (moving mean)", "`moving_mean`", "02"),
    ("中值滤波", "zhōngzhí lǜbō", "median filter (moving median)", "`moving_median`", "02"),
    ("标准化", "biāozhǔnhuà", "standardization", "`Standardizer`, `fit_feature_stats`", "02"),
    ("对数变换", "duìshù biànhuàn", "log transform", "`log1p`", "02"),
    ("特征工程", "tèzhēng gōngchéng", "feature engineering", "`FEATURE_COLUMNS`", "03"),
    ("时间序列", "shíjiān xùliè", "time series", "the daily panel", "02"),
    ("滑动窗口", "huádòng chuāngkǒu", "sliding window", "`seq_length`, `build_windows`", "03"),
    ("长短期记忆网络", "chángduǎnqī jìyì wǎngluò", "long short-term memory network (LSTM)", "`cell=\"lstm\"`", "03"),
    ("门控循环单元", "ménkòng xúnhuán dānyuán", "gated recurrent unit (GRU)", "`cell=\"gru\"`", "03"),
    ("循环神经网络", "xúnhuán shénjīng wǎngluò", "recurrent neural network (RNN)", "`cell=\"rnn\"`", "03"),
    ("线性自回归", "xiànxìng zìhuíguī", "linear autoregression", "`fit_linear_ar`", "03b"),
    ("隐藏层", "yǐncáng céng", "hidden layer (hidden size)", "`hidden_size`", "03"),
    ("超参数", "chāocānshù", "hyperparameter", "the parameters cell", "03"),
    ("学习率", "xuéxí lǜ", "learning rate", "`learning_rate`", "03"),
    ("批大小", "pī dàxiǎo", "batch size", "`batch_size`", "03"),
    ("训练轮数", "xùnliàn lúnshù", "epochs", "`epochs`", "03"),
    ("训练集 / 验证集 / 测试集", "xùnliàn jí / yànzhèng jí / cèshì jí", "training / validation / test set",
     "`split_users`", "03"),
    ("交叉验证", "jiāochā yànzhèng", "cross-validation", "`cross_validate`", "03"),
    ("过拟合", "guònǐhé", "overfitting", "early stopping, `patience`", "03"),
    ("早停", "zǎotíng", "early stopping", "`patience`", "03"),
    ("平均绝对误差", "píngjūn juéduì wùchā", "mean absolute error (MAE)", "`mae`", "03"),
    ("均方误差", "jūnfāng wùchā", "mean squared error (MSE)", "`loss=\"mse\"`", "03"),
    ("最大似然估计", "zuìdà sìrán gūjì", "maximum likelihood estimation", "`fit_poisson_mle`", "04"),
    ("最小二乘法", "zuìxiǎo èrchéng fǎ", "least squares", "`fit_least_squares`", "04"),
    ("泊松分布", "bósōng fēnbù", "Poisson distribution", "daily counts", "01"),
    ("置信区间", "zhìxìn qūjiān", "confidence interval", "`lam_lo`, `lam_hi`", "04"),
    ("克拉美-罗下界", "kèlāměi-luó xiàjiè", "Cramér-Rao bound", "`cramer_rao_lambda`", "04"),
    ("经验贝叶斯", "jīngyàn bèiyèsī", "empirical Bayes (pooling)", "`decaylib.decay.shrinkage`", "04"),
    ("自激点过程", "zìjī diǎn guòchéng", "self-exciting point process (Hawkes process)", "`fit_hawkes`", "04b"),
    ("分支比", "fēnzhī bǐ", "branching ratio (events that one event brings)", "`branching_ratio`", "04b"),
    ("预警", "yùjǐng", "early warning", "`early_warning`", "05"),
    ("冷启动", "lěng qǐdòng", "cold start", "pairs too short for a window", "03"),
    ("数据增强", "shùjù zēngqiáng", "data augmentation", "(discussed in 03b)", "03b"),
    ("集成学习", "jíchéng xuéxí", "ensemble learning", "`FoldEnsemble`", "03b"),
    ("特征重要性", "tèzhēng zhòngyàoxìng", "feature importance", "`permutation_importance`", "03b"),
    ("增量更新", "zēngliàng gēngxīn", "incremental update", "`fine_tune`, `DecayState.update`", "03b"),
    ("流式计算", "liúshì jìsuàn", "streaming computation", "`decaylib.decay.stream`", "09"),
    ("分布式训练", "fēnbùshì xùnliàn", "distributed training", "`decaylib.forecast.distributed`", "09"),
    ("大数据", "dà shùjù", "big data", "`decaylib.data.engine` (DuckDB, Spark)", "09"),
    ("促销时机", "cùxiāo shíjī", "promotion timing", "the action \"time a promotion\" (`ACTIONS`)", "07"),
    ("新品推荐", "xīnpǐn tuījiàn", "recommending fresh items", "`n_fresh`", "06"),
]


def article_map() -> pd.DataFrame:
    """One row per part of the article: ``part, article says, notebook, section, verdict, tutorial shows``.

    Notebook 00.
    """
    df = pd.DataFrame(_MAP, columns=["part", "article says", "notebook", "section", "verdict", "tutorial shows"])
    bad = sorted(set(df["verdict"]) - set(VERDICTS))
    if bad:  # a data error in this module, caught by its tests
        raise ValueError(f"unknown verdict(s) {bad}")
    return df


def glossary() -> pd.DataFrame:
    """The bilingual glossary: ``中文, pinyin, English, in the notebooks, first in``.

    Notebook 00.
    """
    return pd.DataFrame(_GLOSSARY, columns=["中文", "pinyin", "English", "in the notebooks", "first in"])


def notebooks_linked() -> list[str]:
    """The notebook files the map links to.

    Notebook 00.
    """
    return sorted(set(article_map()["notebook"]))
