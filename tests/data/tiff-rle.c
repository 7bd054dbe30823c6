/* Made pages-rle.tif (see tests/cli.rs): libtiff writes CCITT RLE (Compression 2), but
 * tiffcp offers no option for it. `tiff-rle IN OUT [ROWS]` copies every page of the
 * bi-level TIFF IN to OUT, recoded as CCITT RLE in strips of ROWS rows (one strip a page
 * without ROWS).
 *
 *     cc -o tiff-rle tiff-rle.c -ltiff && ./tiff-rle pages-none.tif pages-rle.tif 40
 */
#include <tiffio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    TIFF *in = TIFFOpen(argv[1], "r"), *out = TIFFOpen(argv[2], "w");
    if (!in || !out) return 1;
    do {
        uint32_t w, h; uint16_t photo;
        TIFFGetField(in, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(in, TIFFTAG_IMAGELENGTH, &h);
        TIFFGetField(in, TIFFTAG_PHOTOMETRIC, &photo);
        TIFFSetField(out, TIFFTAG_IMAGEWIDTH, w);
        TIFFSetField(out, TIFFTAG_IMAGELENGTH, h);
        TIFFSetField(out, TIFFTAG_BITSPERSAMPLE, 1);
        TIFFSetField(out, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(out, TIFFTAG_PHOTOMETRIC, photo);
        TIFFSetField(out, TIFFTAG_COMPRESSION, COMPRESSION_CCITTRLE);
        TIFFSetField(out, TIFFTAG_ROWSPERSTRIP, argc > 3 ? (uint32_t)atoi(argv[3]) : h);
        tmsize_t n = TIFFScanlineSize(in);
        unsigned char *row = malloc(n);
        for (uint32_t y = 0; y < h; y++) {
            if (TIFFReadScanline(in, row, y, 0) < 0) return 2;
            if (TIFFWriteScanline(out, row, y, 0) < 0) return 3;
        }
        free(row);
        TIFFWriteDirectory(out);
    } while (TIFFReadDirectory(in));
    TIFFClose(out);
    return 0;
}
