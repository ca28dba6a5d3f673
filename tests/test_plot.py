"""Pictures: what each one shows is checked on its pixels/artists, against the matrix."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv import plot  # noqa: E402


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_block_pattern_colours_exactly_the_non_zero_blocks(groups):
    op = tc.Conv(np.ones((4, 4 // groups, 3, 3)), (4, 6, 6), groups=groups)
    fig, ax = plt.subplots()
    assert plot.plot_block_pattern(op, ax) is fig
    image = ax.images[0].get_array()
    white = np.all(image == 1.0, axis=-1)
    dense = op.todense()
    nonzero_blocks = np.array(
        [
            [dense[i * 16 : (i + 1) * 16, j * 36 : (j + 1) * 36].any() for j in range(4)]
            for i in range(4)
        ]
    )
    np.testing.assert_array_equal(~white, nonzero_blocks)
    labels = {t.get_text() for t in ax.texts}
    assert ("$h_{14}$" in labels) == (groups == 1)
    plt.close(fig)


def test_spy_plot_marks_stored_entries_by_block():
    op = tc.Conv(np.ones((2, 3, 3)), (3, 10), padding=1)
    fig = plot.plot_matrix(op)
    image = fig.axes[0].images[0].get_array()
    stored = op.todense() != 0
    np.testing.assert_array_equal(~np.all(image == 1.0, axis=-1), stored)
    # blocks (0, 0) and (0, 1) have different colours
    assert not np.allclose(image[0, 0], image[0, 10])
    plt.close(fig)


def test_zoomed_block_shows_its_values():
    h = np.array([1.0, 2.0, 3.0])
    op = tc.Conv(np.stack([h, 2 * h])[None], (2, 6), padding=1, padding_mode="circular")
    fig = plot.plot_block(op, 0, 1)
    shown = np.nan_to_num(fig.axes[0].images[0].get_array().filled(np.nan))
    np.testing.assert_array_equal(
        shown, tc.kernel_block(2 * h, 6, padding=1, padding_mode="circular").toarray()
    )
    assert "circulant" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="block \\(i, j\\) must have"):
        plot.plot_block(op, 1, 0)
    plt.close(fig)


def test_singular_value_plot_draws_the_sorted_values():
    values = np.array([0.5, 2.0, 1.0])
    fig, ax = plt.subplots()
    plot.plot_singular_values(values, ax, label="x")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [2.0, 1.0, 0.5])
    plt.close(fig)
