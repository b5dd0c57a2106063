"""The report's charts, as PNG data URLs the page embeds (one file to send, nothing to fetch)."""

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display: the figures only go into the page
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

BINS = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.001]  # the last bin holds full marks


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def pass_rate_chart(rates: pd.Series, title: str) -> str:
    """rates: test cell -> share of submissions with full points (0 to 1), in notebook order."""
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rates) + 1))
    bars = ax.barh(rates.index[::-1], rates.values[::-1] * 100, color="#5b8fd6")
    ax.bar_label(bars, fmt="%.0f %%", padding=3)
    ax.set_xlim(0, 110)  # room for the label of a full bar
    ax.set_xlabel("% of submissions with full points")
    ax.set_title(title)
    return _png(fig)


def score_histogram(percent: pd.Series, title: str) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.hist(percent, bins=BINS, color="#7fbf7f", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("score (%)")
    ax.set_ylabel("submissions")
    ax.set_title(title)
    return _png(fig)
