//! Page readers for a block's column chunks that decompress with one zstd
//! context per thread.
//!
//! parquet-rs's [`SerializedPageReader`] makes a codec for each column
//! chunk it reads, and its zstd codec creates a compression and a
//! decompression context. Creating a context runs `cpuid`, which on a
//! virtual machine traps to the hypervisor: about 13 µs a context on the
//! benchmark host, so 135 µs for a cursor over `samples.parquet`'s five
//! columns before it decodes a byte. A read that misses the page cache
//! makes cursors per block and thread and whenever it moves backwards:
//! a month's `avg_over_time` over 200 series made 286 of them, a third of
//! its CPU time.
//!
//! So the chunk is handed to parquet as if stored uncompressed (its
//! metadata's codec set to `UNCOMPRESSED`, which makes parquet create no
//! codec and pass each page's stored bytes through), and [`ZstdPages`]
//! decompresses each data page it yields with the calling thread's
//! context. Pages that are skipped are never decompressed, as before.
//! Chunks of any other codec keep parquet's own reader.

use std::cell::RefCell;
use std::io::{Cursor, Read};
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::column::page::{Page, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::page_index::offset_index::PageLocation;
use parquet::file::reader::ChunkReader;
use parquet::file::serialized_reader::SerializedPageReader;

/// Largest decompressed page accepted. A block's pages hold at most a few
/// thousand values of 8 bytes (`docs/format/block.md`); the bound only
/// keeps a corrupt frame header from asking for an absurd allocation.
const MAX_PAGE_BYTES: u64 = 64 << 20;

thread_local! {
    /// The thread's zstd decompression context, made on first use.
    static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// A page reader over one column chunk of `data` (rows `rows`, pages at
/// `locations`), decompressing zstd pages with the thread's context.
pub(crate) fn column_pages<R: ChunkReader + 'static>(
    data: Arc<R>,
    meta: &ColumnChunkMetaData,
    rows: usize,
    locations: Vec<PageLocation>,
) -> Result<Box<dyn PageReader>> {
    if !matches!(meta.compression(), Compression::ZSTD(_)) {
        let r = SerializedPageReader::new(data, meta, rows, Some(locations))?;
        return Ok(Box::new(r));
    }
    let stored = meta
        .clone()
        .into_builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build()?;
    let inner = SerializedPageReader::new(data, &stored, rows, Some(locations))?;
    Ok(Box::new(ZstdPages { inner }))
}

/// The pages of a zstd column chunk read as stored, decompressed as they
/// are taken.
pub(crate) struct ZstdPages<R: ChunkReader> {
    inner: SerializedPageReader<R>,
}

impl<R: ChunkReader> Iterator for ZstdPages<R> {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl<R: ChunkReader> PageReader for ZstdPages<R> {
    fn get_next_page(&mut self) -> Result<Option<Page>> {
        self.inner.get_next_page()?.map(decompress_page).transpose()
    }

    fn peek_next_page(&mut self) -> Result<Option<PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> Result<()> {
        self.inner.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> Result<bool> {
        self.inner.at_record_boundary()
    }
}

/// `page` with its data decompressed. A version-2 data page keeps its
/// levels uncompressed ahead of the data and says whether the data is
/// compressed at all; every other page is compressed whole.
fn decompress_page(mut page: Page) -> Result<Page> {
    match &mut page {
        Page::DataPage { buf, .. } | Page::DictionaryPage { buf, .. } => {
            *buf = decompress(buf, 0)?;
        }
        Page::DataPageV2 {
            buf,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed: true,
            ..
        } => {
            let levels = *def_levels_byte_len as usize + *rep_levels_byte_len as usize;
            *buf = decompress(buf, levels)?;
        }
        Page::DataPageV2 { .. } => {}
    }
    Ok(page)
}

/// Has this thread made its decompression context (read a zstd page)?
#[cfg(test)]
pub(crate) fn thread_context_made() -> bool {
    DCTX.with(|cell| cell.borrow().is_some())
}

/// `buf[..keep]` followed by the zstd frame `buf[keep..]` decompressed.
fn decompress(buf: &[u8], keep: usize) -> Result<Bytes> {
    let (head, frame) = buf
        .split_at_checked(keep)
        .ok_or_else(|| ParquetError::General("page shorter than its levels".into()))?;
    let mut out = Vec::new();
    out.extend_from_slice(head);
    if frame.is_empty() {
        // A page with no values may have no frame at all.
        return Ok(Bytes::from(out));
    }
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_PAGE_BYTES => {
            out.reserve_exact(size as usize);
            // Written after the levels (a bare `Vec` would be written from 0).
            let mut to = Cursor::new(&mut out);
            to.set_position(keep as u64);
            let written = DCTX.with(|cell| {
                let mut slot = cell.try_borrow_mut();
                match slot.as_deref_mut() {
                    Ok(Some(d)) => d.decompress_to_buffer(frame, &mut to),
                    Ok(slot) => {
                        let d = slot.insert(zstd::bulk::Decompressor::new()?);
                        d.decompress_to_buffer(frame, &mut to)
                    }
                    // Not reentered today; a second context if it were.
                    Err(_) => zstd::bulk::Decompressor::new()?.decompress_to_buffer(frame, &mut to),
                }
            })?;
            if written as u64 != size {
                return Err(ParquetError::General(format!(
                    "zstd page decompressed to {written} bytes, its frame says {size}"
                )));
            }
        }
        Ok(Some(size)) => {
            return Err(ParquetError::General(format!(
                "zstd page of {size} bytes, more than {MAX_PAGE_BYTES}"
            )));
        }
        // A frame written by a streaming encoder need not state its size:
        // decode it as a stream, within the same bound.
        Ok(None) => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(frame)?.single_frame();
            let read = (&mut decoder)
                .take(MAX_PAGE_BYTES + 1)
                .read_to_end(&mut out)?;
            if read as u64 > MAX_PAGE_BYTES {
                return Err(ParquetError::General(format!(
                    "zstd page of more than {MAX_PAGE_BYTES} bytes"
                )));
            }
        }
        Err(_) => return Err(ParquetError::General("page is not a zstd frame".into())),
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompress_keeps_levels_and_checks_the_frame() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        let out = decompress(&frame, 0).unwrap();
        assert_eq!(&out[..], &data[..]);

        // Levels ahead of the frame are kept as they are.
        let mut with_levels = vec![7, 8, 9];
        with_levels.extend_from_slice(&frame);
        let out = decompress(&with_levels, 3).unwrap();
        assert_eq!(&out[..3], &[7, 8, 9]);
        assert_eq!(&out[3..], &data[..]);

        // A frame without its size (a streaming encoder's) decodes too.
        let mut streamed = Vec::new();
        let mut enc = zstd::stream::write::Encoder::new(&mut streamed, 3).unwrap();
        std::io::Write::write_all(&mut enc, &data).unwrap();
        enc.finish().unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&streamed),
            Ok(None)
        ));
        assert_eq!(&decompress(&streamed, 0).unwrap()[..], &data[..]);

        // An empty frame part: nothing to decompress.
        assert_eq!(&decompress(&[1, 2], 2).unwrap()[..], &[1, 2]);

        // Corrupt input is an error, not a panic.
        assert!(decompress(&frame[..frame.len() / 2], 0).is_err());
        assert!(decompress(b"not zstd at all", 0).is_err());
        assert!(decompress(&[1, 2], 3).is_err());
        let mut flipped = frame.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let _ = decompress(&flipped, 0);
    }
}
