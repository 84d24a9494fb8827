//! IDX files (MNIST, Fashion-MNIST): big-endian header `0x00 0x00 <type> <ndim>`, then `ndim`
//! u32 sizes, then the data. Only type `0x08` (unsigned byte) occurs in these sets. Images are
//! `ndim = 3` (n, rows, cols), labels `ndim = 1` (n). The fetch script decompresses the `.gz`
//! files, so the readers take plain IDX files and no gzip dependency is needed.

use std::path::Path;

use ndarray::Array2;

use super::{cache_file, read_file, DataError, Images, Result, Split};

/// An IDX array of unsigned bytes: `dims` (e.g. `[60000, 28, 28]`) and the row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes; `path` is only used in errors.
fn parse_idx(path: &Path, bytes: Vec<u8>) -> Result<Idx> {
    let bad = |message: String| DataError::Format { path: path.to_path_buf(), message };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(bad("gzip-compressed; decompress it first (scripts/fetch-data.sh does)".into()));
    }
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (the first two bytes must be zero)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!("IDX element type 0x{:02x} is not supported (only 0x08, unsigned byte)", bytes[2])));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(bad(format!("truncated IDX header ({ndim} dimensions, {} bytes)", bytes.len())));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let found = bytes.len() - header;
    if expected != Some(found) {
        return Err(bad(format!(
            "IDX header says dimensions {dims:?} ({} bytes of data) but the file has {found}",
            expected.map_or("too many".to_string(), |e| e.to_string())
        )));
    }
    let mut data = bytes;
    data.drain(..header);
    Ok(Idx { dims, data })
}

/// Reads an (uncompressed) IDX file of unsigned bytes, checking the magic number and that the
/// data length matches the header exactly.
pub fn read_idx(path: &Path) -> Result<Idx> {
    parse_idx(path, read_file(path)?)
}

/// Reads an image file (`n × rows × cols`, magic `0x00000803`) and its label file (`n`, magic
/// `0x00000801`). Pixels are scaled to [0, 1] (÷255); `n_classes` is the largest label + 1.
pub fn read_idx_images(images: &Path, labels: &Path) -> Result<Images> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    if img.dims.len() != 3 {
        return Err(DataError::Format {
            path: images.to_path_buf(),
            message: format!("an image file has 3 dimensions (magic 0x00000803), this one {}", img.dims.len()),
        });
    }
    if lab.dims.len() != 1 {
        return Err(DataError::Format {
            path: labels.to_path_buf(),
            message: format!("a label file has 1 dimension (magic 0x00000801), this one {}", lab.dims.len()),
        });
    }
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    if lab.dims[0] != n {
        return Err(DataError::Count { path: labels.to_path_buf(), what: "labels (one per image)".into(), expected: n, found: lab.dims[0] });
    }
    let x = Array2::from_shape_vec((n, h * w), img.data.iter().map(|&p| f64::from(p) / 255.0).collect())
        .map_err(|e| DataError::Format { path: images.to_path_buf(), message: e.to_string() })?;
    let y: Vec<usize> = lab.data.iter().map(|&l| l as usize).collect();
    let n_classes = y.iter().max().map_or(0, |m| m + 1);
    Ok(Images { x, y, height: h, width: w, n_classes })
}

/// Reads `<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte` and checks the MNIST-format counts.
fn mnist_like(cache: &Path, dir: &str, split: Split) -> Result<Images> {
    let (stem, n) = match split {
        Split::Train => ("train", 60_000),
        Split::Test => ("t10k", 10_000),
    };
    let images = cache_file(cache, &format!("{dir}/{stem}-images-idx3-ubyte"))?;
    let labels = cache_file(cache, &format!("{dir}/{stem}-labels-idx1-ubyte"))?;
    let out = read_idx_images(&images, &labels)?;
    if out.len() != n {
        return Err(DataError::Count { path: images, what: "images".into(), expected: n, found: out.len() });
    }
    if (out.height, out.width) != (28, 28) || out.n_classes != 10 {
        return Err(DataError::Format {
            path: images,
            message: format!("expected 28×28 images in 10 classes, found {}×{} in {}", out.height, out.width, out.n_classes),
        });
    }
    Ok(out)
}

/// MNIST from `<cache>/mnist/`: 60,000 training and 10,000 test images, 28×28, 10 classes.
pub fn mnist(cache: &Path, split: Split) -> Result<Images> {
    mnist_like(cache, "mnist", split)
}

/// Fashion-MNIST from `<cache>/fashion-mnist/`: 60,000 training and 10,000 test images, 28×28,
/// 10 classes (0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
/// 7 sneaker, 8 bag, 9 ankle boot).
pub fn fashion_mnist(cache: &Path, split: Split) -> Result<Images> {
    mnist_like(cache, "fashion-mnist", split)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::fetched_cache;
    use super::*;

    fn idx_bytes(kind: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, kind, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn reads_a_tiny_generated_idx_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lab) = (dir.path().join("img-idx3-ubyte"), dir.path().join("lab-idx1-ubyte"));
        let pixels: Vec<u8> = (0..3 * 2 * 3).map(|i| (i * 15) as u8).collect();
        std::fs::write(&img, idx_bytes(0x08, &[3, 2, 3], &pixels)).unwrap();
        std::fs::write(&lab, idx_bytes(0x08, &[3], &[2, 0, 1])).unwrap();
        let idx = read_idx(&img).unwrap();
        assert_eq!(idx.dims, vec![3, 2, 3]);
        let out = read_idx_images(&img, &lab).unwrap();
        assert_eq!((out.len(), out.height, out.width, out.n_classes), (3, 2, 3, 3));
        assert_eq!(out.y, vec![2, 0, 1]);
        assert!((out.x[[1, 0]] - 90.0 / 255.0).abs() < 1e-15);
        assert_eq!(out.x[[2, 5]], 255.0 / 255.0);
    }

    #[test]
    fn idx_header_errors() {
        let p = Path::new("x-idx3-ubyte");
        let err = |b: Vec<u8>| parse_idx(p, b).unwrap_err().to_string();
        assert!(err(vec![0x1f, 0x8b, 8, 0]).contains("gzip-compressed"));
        assert!(err(vec![1, 0, 8, 1, 0, 0, 0, 0]).contains("not an IDX file"));
        assert!(err(idx_bytes(0x0D, &[1], &[0, 0, 0, 0])).contains("element type 0x0d"));
        assert!(err(vec![0, 0, 8, 3, 0, 0]).contains("truncated IDX header"));
        assert!(err(idx_bytes(0x08, &[2, 2, 2], &[0; 7])).contains("[2, 2, 2] (8 bytes of data) but the file has 7"));
        assert!(err(idx_bytes(0x08, &[2], &[0; 3])).contains("but the file has 3"));
        assert!(err(idx_bytes(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[])).contains("too many"));

        let dir = tempfile::tempdir().unwrap();
        let (img, lab) = (dir.path().join("i"), dir.path().join("l"));
        std::fs::write(&img, idx_bytes(0x08, &[2, 1, 1], &[0, 1])).unwrap();
        std::fs::write(&lab, idx_bytes(0x08, &[3], &[0, 1, 1])).unwrap();
        let msg = read_idx_images(&img, &lab).unwrap_err().to_string();
        assert!(msg.contains("expected 2 labels (one per image), found 3"), "{msg}");
        let msg = read_idx_images(&lab, &lab).unwrap_err().to_string();
        assert!(msg.contains("an image file has 3 dimensions"), "{msg}");
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_mnist_counts() {
        let cache = fetched_cache();
        let train = mnist(&cache, Split::Train).unwrap();
        let test = mnist(&cache, Split::Test).unwrap();
        assert_eq!((train.len(), test.len(), train.x.ncols()), (60_000, 10_000, 784));
        assert_eq!(train.class_counts(), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
        assert_eq!(test.class_counts(), vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
        assert_eq!(&train.y[..5], &[5, 0, 4, 1, 9]);
        assert!(train.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_fashion_mnist_counts() {
        let cache = fetched_cache();
        let train = fashion_mnist(&cache, Split::Train).unwrap();
        let test = fashion_mnist(&cache, Split::Test).unwrap();
        assert_eq!((train.len(), test.len(), train.x.ncols()), (60_000, 10_000, 784));
        assert_eq!(train.class_counts(), vec![6000; 10]);
        assert_eq!(test.class_counts(), vec![1000; 10]);
        assert_eq!(&train.y[..5], &[9, 0, 0, 3, 0]);
    }
}
