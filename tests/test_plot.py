"""Pictures: what each one shows is checked on its pixels/artists, against the matrix."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv.pictures import plot  # noqa: E402


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


@pytest.mark.parametrize("transposed", [False, True])
def test_spy_plot_colours_each_stored_entry_by_its_group(transposed):
    op = tc.Conv(np.ones((4, 1, 3)), (2, 10), padding=1, groups=2, padding_mode="reflect")
    op = op.H if transposed else op
    fig = plot.plot_matrix(op)
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    stored = op.todense() != 0
    np.testing.assert_array_equal(~np.all(image == 1.0, axis=-1), stored)
    colors = plot.group_colors(2)
    rows_per_block, cols_per_block = (
        op.shape[0] // op.output_shape[0],
        op.shape[1] // op.input_shape[0],
    )
    for r, c in zip(*np.nonzero(stored)):
        conv_out = (c // cols_per_block) if transposed else (r // rows_per_block)
        np.testing.assert_array_equal(image[r, c], colors[conv_out // 2])
    assert ax.get_aspect() == 1.0
    # ticks at the block borders, channels named at the middle of each block
    np.testing.assert_allclose(
        ax.xaxis.get_minorticklocs(), np.arange(op.input_shape[0] + 1) * cols_per_block - 0.5
    )
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [f"$x_{{{j}}}$" for j in range(1, op.input_shape[0] + 1)]
    plt.close(fig)


def test_spy_plot_of_a_large_matrix_bins_without_dropping_entries():
    op = tc.Conv(np.ones((1, 1, 3, 3)), (1, 60, 60), padding=1)  # 3600 x 3600
    fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
    plot.plot_matrix(op, ax)
    image = ax.images[0].get_array()
    coloured = ~np.all(image == 1.0, axis=-1)
    assert image.shape[0] < 3600
    # every bin on the diagonal holds the main diagonal's entries: no bin is empty there
    assert coloured[np.arange(image.shape[0]), np.arange(image.shape[1])].all()
    # fewer bins than screen pixels, so that drawing drops none
    width = ax.get_position().width * fig.get_figwidth() * fig.dpi
    assert image.shape[1] <= width
    plt.close(fig)


def test_zoomed_block_shows_its_values():
    h = np.array([1.0, 2.0, 3.0])
    op = tc.Conv(np.stack([h, 2 * h])[None], (2, 6), padding=1, padding_mode="circular")
    fig = plot.plot_block(op, 0, 1)
    image = fig.axes[0].images[0]
    shown = np.nan_to_num(image.get_array().filled(np.nan))
    np.testing.assert_array_equal(
        shown, tc.kernel_block(2 * h, 6, padding=1, padding_mode="circular").toarray()
    )
    assert "circulant" in fig.axes[0].get_title()
    assert image.get_clim() == (0.0, 6.0)  # one sign: a sequential scale from zero
    with pytest.raises(ValueError, match="block \\(i, j\\) must have"):
        plot.plot_block(op, 1, 0)
    plt.close(fig)


def test_zoomed_block_with_both_signs_is_centred_on_zero():
    op = tc.Conv(np.array([[[[1.0, -3.0], [0.5, 2.0]]]]), (1, 5, 5))
    fig = plot.plot_block(op)
    low, high = fig.axes[0].images[0].get_clim()
    assert low == -high == -3.0
    plt.close(fig)


@pytest.mark.parametrize(
    "kernel, size, kwargs",
    [
        ((7, 7), (150, 128), dict(padding="same", padding_mode="reflect")),
        ((3, 5), (40, 90), dict(stride=2, padding=1)),
        ((3, 3, 3), (12, 20, 20), dict(padding=1, padding_mode="replicate")),
        ((31,), (4096,), dict(padding=15)),
    ],
)
def test_block_window_holds_every_band_of_the_kernel(kernel, size, kwargs):
    op = tc.Conv(np.ones((1, 1, *kernel)), (1, *size), **kwargs)
    rows, cols = plot.block_window(op)
    row_length = int(np.prod(op.output_shape[2:]))
    assert rows % row_length == 0
    block = op.tosparse()[:rows, :cols]
    whole = op.tosparse()[:rows]
    # the window's columns hold every stored entry of its rows: all bands are in view
    assert block.nnz == whole.nnz
    # and each band (distinct offset along the leading axis) appears
    first = op.tosparse()[[row_length * (kernel[0] // 2 + 1)]].indices // int(np.prod(size[1:]))
    assert np.unique(first).size == kernel[0]


def test_binned_block_shows_the_value_of_largest_magnitude():
    import scipy.sparse

    dense = np.zeros((4, 4))
    dense[0, 0], dense[0, 1], dense[1, 1] = 1.0, -5.0, 2.0
    dense[3, 3] = 0.5
    binned = plot._binned_values(scipy.sparse.csr_matrix(dense), (2, 2))
    np.testing.assert_array_equal(np.nan_to_num(binned, nan=99), [[-5.0, 99], [99, 0.5]])


def test_singular_value_plot_draws_the_sorted_values():
    values = np.array([0.5, 2.0, 1.0])
    fig, ax = plt.subplots()
    plot.plot_singular_values(values, ax, label="x")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [2.0, 1.0, 0.5])
    plt.close(fig)


def _text_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]


def test_the_pictures_people_see_have_no_clipped_or_overlapping_text(tmp_path):
    from toeplitz_conv.pictures.figures import layer_figure

    op = tc.Conv(np.ones((8, 4, 3, 3)), (8, 32, 32), padding=1, groups=2)
    figures = [layer_figure(op), plot.plot_block(op, 0, 1), plot.plot_matrix(op.H)]
    for fig in figures:
        boxes = _text_boxes(fig)
        for text, box in boxes:
            assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1), text
        for k, (text, box) in enumerate(boxes):
            for other, other_box in boxes[k + 1 :]:
                assert not box.overlaps(other_box), (text, other)
        plt.close(fig)


def _binned_from_the_matrix(op, shape, span):
    """The oracle: every stored entry of the assembled matrix, binned, with its group."""
    matrix = op.tosparse("coo")
    rows_per_block = op.shape[0] // op.output_shape[0]
    cols_per_block = op.shape[1] // op.input_shape[0]
    g = op.geometry
    out_channel, in_channel = matrix.row // rows_per_block, matrix.col // cols_per_block
    if op.transposed:
        out_channel, in_channel = in_channel, out_channel
    group = out_channel // g.out_per_group
    raster = np.full(shape, -1)
    keys = (
        matrix.row.astype(np.int64) * shape[0] // span[0],
        matrix.col.astype(np.int64) * shape[1] // span[1],
    )
    np.maximum.at(raster, keys, group)
    return raster


@pytest.mark.parametrize(
    "make",
    [
        lambda w: tc.Conv(w((6, 2, 3, 3)), (4, 9, 7), padding=1, groups=2, padding_mode="reflect"),
        lambda w: tc.ConvTranspose(w((4, 3, 3, 2)), (4, 5, 6), stride=2, padding=1, groups=2),
        lambda w: tc.Conv(w((10, 1, 3)), (5, 40), groups=5, padding_mode="circular", padding=4,
                          stride=3),
        lambda w: tc.Conv(w((12, 12, 3)), (12, 13), padding=1),
        lambda w: tc.Conv(w((3, 2, 2, 2, 2)), (2, 3, 4, 3), padding=1, dilation=2),
    ],
)
def test_the_structural_raster_bins_exactly_the_stored_entries(make):
    from toeplitz_conv.pictures.raster import spy_raster

    op = make(np.random.default_rng(0).standard_normal)
    for target in [(1, 1), (3, 5), (7, 7), (50, 40), (400, 300)]:
        raster, span = spy_raster(op, target)
        np.testing.assert_array_equal(raster, _binned_from_the_matrix(op, raster.shape, span))


def test_a_layer_of_billions_of_entries_is_drawn_in_the_memory_of_its_picture(tmp_path):
    import tracemalloc

    from toeplitz_conv.pictures.figures import layer_figure, save_figure

    op = tc.Conv(np.ones((64, 64, 3, 3)), (64, 256, 256), padding=1)  # 2.4e9 non-zeros
    tracemalloc.start()
    try:
        figure = layer_figure(op, max_bytes=500_000_000)
        save_figure(figure, tmp_path / "layer.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 500_000_000, peak
    assert (tmp_path / "layer.png").stat().st_size > 0
    fig = plot.plot_block(op, 0, 0, max_bytes=100_000_000)  # one block's window, not the matrix
    assert fig.axes[0].images
    plt.close(fig)
