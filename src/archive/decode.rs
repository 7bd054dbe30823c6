//! Decompression: lanes decoded in waves, their strips assembled into images handed on
//! in archive order; repeat lanes' strips copied from the images they repeat, each kept
//! until its last copy.

use super::*;
use crate::codec::bitsback::{BitsBack, Chain};
use crate::codec::frame::{self, Frame};
use crate::codec::lane::{CodecError, LaneCodec, LaneToDecode};
use crate::codec::memory::PageMemory;
use crate::codec::mixing::PageMixing;
use crate::codec::model::PRECISION;
use crate::codec::stored::Stored;
use crate::container::{Archive, Edition, Entry, LaneCoder};
use crate::infer::network::Network;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// The strips of each lane with their images' widths, mapped onto the entries: lane k
/// covers the next `rows` rows.
fn lane_segments<'a>(
    archive: &'a Archive,
) -> impl Iterator<Item = (usize, Vec<(Segment, usize)>)> + 'a {
    let mut sizes = archive.entry_sizes().enumerate();
    // The image being split into lanes: (index, width, height, rows used).
    let mut current: Option<(usize, u32, u32, usize)> = None;
    archive.lanes.iter().enumerate().map(move |(k, lane)| {
        let mut left = lane.rows as usize;
        let mut segments = Vec::new();
        while left > 0 {
            if current.is_none_or(|(_, _, h, used)| used == h as usize) {
                let (i, (w, h)) = sizes.next().expect("lanes cover the entries' rows (parse)");
                current = Some((i, w, h, 0));
            }
            let (i, w, h, used) = current.as_mut().expect("set above");
            let rows = left.min(*h as usize - *used);
            segments.push((
                Segment {
                    image: *i,
                    first_row: *used,
                    rows,
                },
                *w as usize,
            ));
            *used += rows;
            left -= rows;
        }
        (k, segments)
    })
}

/// Bytes that decoding `archive` on `threads` threads holds at most, beyond what the sink
/// keeps: for the wave of lanes decoded together that needs most, their pixels and their
/// coders' tables (page mixing's, about 138 MiB a lane, the page memory's, a Zstandard
/// lane's rows and context), the image being assembled, and the images kept for repeat
/// lanes to copy. Known from the container alone, before anything is decoded, so that a
/// caller's memory limit refuses an archive before it allocates.
pub fn decode_bytes(archive: &Archive, threads: usize) -> u64 {
    let threads = threads.max(1);
    let per_task = lanes_per_task(archive.lanes.len(), threads);
    let wave = per_task * threads;
    let mut lanes = lane_segments(archive).map(|(k, segments)| {
        let lane = &archive.lanes[k];
        let strips = segments.iter().map(|(s, width)| (*width, s.rows));
        let pixels: u64 = strips.clone().map(|(w, r)| (w * r) as u64).sum();
        let tables = match lane.coder {
            LaneCoder::PageMixing(_) => {
                let strip = strips.map(|(w, r)| PageMixing::strip_bytes(w, r)).max();
                PageMixing::TABLE_BYTES + strip.unwrap_or(0)
            }
            LaneCoder::BitsBack { memory: true, .. } => PageMemory::TABLE_BYTES,
            LaneCoder::Context { template } => 4 << COUNTING_MODELS[usize::from(template)].size(),
            LaneCoder::Zstd => {
                let rows: usize = strips.map(|(w, r)| w.div_ceil(8) * r).sum();
                rows + 1 + frame::CONTEXT_BYTES
            }
            LaneCoder::BitsBack { .. } | LaneCoder::Stored | LaneCoder::Repeat { .. } => 0,
        };
        pixels + tables as u64
    });
    let mut most = 0u64;
    loop {
        let in_wave: Vec<u64> = lanes.by_ref().take(wave).collect();
        if in_wave.is_empty() {
            break;
        }
        most = most.max(in_wave.iter().sum());
    }
    let largest_image = archive.size_range.1;
    most + u64::from(largest_image.0) * u64::from(largest_image.1) + most_kept(archive)
}

/// No later image copies this one.
const NO_COPY: u32 = u32::MAX;

/// For each image, the last image that copies it and that `needs` accepts, or
/// [`NO_COPY`]: decoding keeps an image until then. Empty where no lane repeats; 4 bytes
/// an image otherwise (image counts fit in 24 bits).
fn last_copies(archive: &Archive, needs: impl Fn(usize) -> bool) -> Vec<u32> {
    if !archive
        .lanes
        .iter()
        .any(|l| matches!(l.coder, LaneCoder::Repeat { .. }))
    {
        return Vec::new();
    }
    let mut last = vec![NO_COPY; archive.image_count as usize];
    for (image, source) in repeated_images(archive) {
        if needs(image) {
            last[source] = image as u32;
        }
    }
    last
}

/// The most pixels that decoding the whole archive keeps at once for repeat lanes to copy,
/// and its bookkeeping's bytes.
fn most_kept(archive: &Archive) -> u64 {
    let last = last_copies(archive, |_| true);
    if last.is_empty() {
        return 0;
    }
    // The pixels kept until each image, for the images kept now.
    let mut ends: BTreeMap<u32, u64> = BTreeMap::new();
    let (mut kept, mut most) = (0u64, 0u64);
    for (image, (w, h)) in archive.entry_sizes().enumerate() {
        kept -= ends.remove(&(image as u32)).unwrap_or(0);
        if last[image] != NO_COPY {
            let pixels = u64::from(w) * u64::from(h);
            kept += pixels;
            *ends.entry(last[image]).or_default() += pixels;
            most = most.max(kept);
        }
    }
    most + 4 * last.len() as u64
}

/// The images that repeat lanes copy, each kept from when it is whole until its last copy.
struct Kept {
    last: Vec<u32>,
    images: HashMap<usize, Vec<u8>>,
    /// The images kept now, by the image after which they go.
    until: HashMap<u32, Vec<usize>>,
}

impl Kept {
    fn new(archive: &Archive, needs: impl Fn(usize) -> bool) -> Self {
        Kept {
            last: last_copies(archive, needs),
            images: HashMap::new(),
            until: HashMap::new(),
        }
    }

    /// Rows `seg` of the image `back` before `seg.image`, which is kept.
    fn copy(&self, seg: &Segment, back: usize, width: usize) -> Vec<u8> {
        let source = &self.images[&(seg.image - back)];
        source[seg.first_row * width..(seg.first_row + seg.rows) * width].to_vec()
    }

    /// `image`, of entry `e`, is whole: the images it was the last copy of go, and it is
    /// kept if a later image copies it (a copy reserved fallibly, as images are).
    fn whole(&mut self, index: usize, e: &Entry, image: &[u8]) -> Result<(), ArchiveError> {
        for done in self.until.remove(&(index as u32)).into_iter().flatten() {
            self.images.remove(&done);
        }
        let Some(&last) = self.last.get(index).filter(|&&l| l != NO_COPY) else {
            return Ok(());
        };
        let mut copy = image_buffer(e)?;
        copy.extend_from_slice(image);
        self.images.insert(index, copy);
        self.until.entry(last).or_default().push(index);
        Ok(())
    }
}

/// (image, the image it repeats) for every strip of a repeat lane, in archive order.
fn repeated_images<'a>(archive: &'a Archive) -> impl Iterator<Item = (usize, usize)> + 'a {
    lane_segments(archive).flat_map(move |(k, segments)| {
        let back = match archive.lanes[k].coder {
            LaneCoder::Repeat { back } => Some(back as usize),
            _ => None,
        };
        segments
            .into_iter()
            .filter_map(move |(s, _)| back.map(|back| (s.image, s.image - back)))
    })
}

/// Which images decoding must assemble to hand on those of `chosen`: those, and every
/// image a repeat lane copies into one of them, and so on back (`parse` checked that
/// each lies before the image that repeats it).
fn needed_images(archive: &Archive, chosen: Option<&[bool]>) -> Option<Vec<bool>> {
    let mut needed = chosen?.to_vec();
    let pairs: Vec<(usize, usize)> = repeated_images(archive).collect();
    for &(image, source) in pairs.iter().rev() {
        if needed[image] {
            needed[source] = true;
        }
    }
    Some(needed)
}

/// Decodes every image of an archive, in order, handing each to `sink` with its entry
/// as soon as its last row is decoded. The pixel checksum is verified incrementally;
/// when it fails, the error comes after the last image, so the sink must treat its output
/// as provisional until this returns `Ok`. `models` are the networks available; a lane
/// whose model is missing fails with [`ArchiveError::MissingModel`].
pub fn decompress<E: From<ArchiveError>>(
    models: &[&Network],
    archive: &Archive,
    sink: &mut dyn FnMut(Entry, Vec<u8>) -> Result<(), E>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), E> {
    let decoded = decode_images(models, archive, None, sink, progress)?;
    if decoded != archive.pixel_crc {
        return Err(ArchiveError::PixelChecksum {
            stored: archive.pixel_crc,
            decoded,
        }
        .into());
    }
    Ok(())
}

/// Decodes only the images whose entries `wanted` accepts, in order, decoding only the
/// lanes that hold them: one digit of 60,000 costs one lane. The pixel checksum covers
/// every image, so it cannot be checked here; the file checksum, which
/// [`container::parse`] checked, still covers every byte the images came from.
pub fn decompress_some<E: From<ArchiveError>>(
    models: &[&Network],
    archive: &Archive,
    wanted: &dyn Fn(&Entry) -> bool,
    sink: &mut dyn FnMut(Entry, Vec<u8>) -> Result<(), E>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), E> {
    let chosen: Vec<bool> = archive.entries().map(|e| wanted(&e)).collect();
    decode_images(models, archive, Some(&chosen), sink, progress).map(|_| ())
}

/// The decoding both of the above share: the lanes holding an image of `chosen` (every
/// lane where `None`), or one that such an image repeats, wave by wave, each chosen image
/// handed to `sink` once whole. Returns the CRC-32 of the images handed on.
fn decode_images<E: From<ArchiveError>>(
    models: &[&Network],
    archive: &Archive,
    chosen: Option<&[bool]>,
    sink: &mut dyn FnMut(Entry, Vec<u8>) -> Result<(), E>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u32, E> {
    if archive.precision as usize != PRECISION {
        return Err(ArchiveError::Precision(archive.precision).into());
    }
    let wants = |image: usize| chosen.is_none_or(|c| c[image]);
    let needed = needed_images(archive, chosen);
    let needs = |image: usize| needed.as_ref().is_none_or(|n| n[image]);
    let mut kept = Kept::new(archive, needs);
    let coders = DecodingCoders::resolve(models, archive)?;
    let threads = rayon::current_num_threads();
    let per_task = lanes_per_task(archive.lanes.len(), threads);
    let wave = per_task * threads;
    let mut crc = crc32fast::Hasher::new();
    let mut lanes =
        lane_segments(archive).filter(|(_, segs)| segs.iter().any(|(s, _)| needs(s.image)));
    let mut assembly = Assembly::new(archive.entries());
    loop {
        let planned: Vec<(usize, Vec<(Segment, usize)>)> = lanes.by_ref().take(wave).collect();
        if planned.is_empty() {
            break;
        }
        // Repeat lanes decode nothing: their strips are copies of kept images.
        let repeat_of = |k: usize| match archive.lanes[k].coder {
            LaneCoder::Repeat { back } => Some(back as usize),
            _ => None,
        };
        let coded: Vec<_> = planned
            .iter()
            .filter(|(k, _)| repeat_of(*k).is_none())
            .cloned()
            .collect();
        let mut decoded = decode_wave(archive, &coders, &coded, per_task)?.into_iter();
        for (k, segs) in &planned {
            let repeat = repeat_of(*k);
            let mut strips = match repeat {
                Some(_) => Vec::new().into_iter(),
                None => decoded
                    .next()
                    .expect("a decoded lane for each coded lane")
                    .into_iter(),
            };
            for (seg, width) in segs {
                let pixels = match repeat {
                    Some(back) if needs(seg.image) => kept.copy(seg, back, *width),
                    Some(_) => continue,
                    None => strips.next().expect("a strip for each segment"),
                };
                if !needs(seg.image) {
                    continue;
                }
                if wants(seg.image) {
                    progress(seg.rows as u64);
                }
                let Some((e, image)) = assembly.add(seg, pixels)? else {
                    continue;
                };
                kept.whole(seg.image, &e, &image)?;
                if wants(seg.image) {
                    crc.update(&image);
                    sink(e, image)?;
                }
            }
        }
    }
    Ok(crc.finalize())
}

/// Images put together from their strips, in archive order.
struct Assembly<I: Iterator<Item = Entry>> {
    entries: I,
    /// The index `entries` yields next.
    next_entry: usize,
    /// The image being assembled.
    pending: Option<(Entry, Vec<u8>)>,
}

impl<I: Iterator<Item = Entry>> Assembly<I> {
    fn new(entries: I) -> Self {
        Assembly {
            entries,
            next_entry: 0,
            pending: None,
        }
    }

    /// Adds the strip `seg` of an image; returns the image once it is whole.
    fn add(
        &mut self,
        seg: &Segment,
        pixels: Vec<u8>,
    ) -> Result<Option<(Entry, Vec<u8>)>, ArchiveError> {
        let (e, buf) = match self.pending.take() {
            Some((e, mut buf)) => {
                buf.extend_from_slice(&pixels);
                (e, buf)
            }
            None => {
                let e = self
                    .entries
                    .nth(seg.image - self.next_entry)
                    .expect("segments follow the entries");
                self.next_entry = seg.image + 1;
                if pixels.len() as u64 == e.pixels() {
                    // A whole image in one strip is handed on as decoded.
                    (e, pixels)
                } else {
                    // An image over several strips gets its whole buffer now, and
                    // fallibly: a valid archive may hold an image larger than this
                    // machine's memory, which must be a clean error, not an abort.
                    let mut buf = image_buffer(&e)?;
                    buf.extend_from_slice(&pixels);
                    (e, buf)
                }
            }
        };
        if buf.len() as u64 == e.pixels() {
            Ok(Some((e, buf)))
        } else {
            self.pending = Some((e, buf));
            Ok(None)
        }
    }
}

/// An empty buffer for the pixels of the image of `e`, reserved whole, or the memory
/// error that names it.
fn image_buffer(e: &Entry) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(e.pixels() as usize)
        .map_err(|_| ArchiveError::Memory {
            name: e.name.clone(),
            needed: e.pixels(),
        })?;
    Ok(buf)
}

/// The coder of every lane of an archive, one chain per (model, samples, memory), resolved
/// before anything is decoded.
struct DecodingCoders<'n> {
    chains: Vec<(LaneCoder, Chain<'n>)>,
}

impl<'n> DecodingCoders<'n> {
    fn resolve(models: &[&'n Network], archive: &Archive) -> Result<Self, ArchiveError> {
        let mut chains: Vec<(LaneCoder, Chain)> = Vec::new();
        for lane in &archive.lanes {
            let LaneCoder::BitsBack {
                model,
                samples,
                memory,
            } = lane.coder
            else {
                continue;
            };
            if chains.iter().any(|(c, _)| *c == lane.coder) {
                continue;
            }
            let id = archive.models[model as usize];
            let net = models
                .iter()
                .find(|n| n.is(&id))
                .ok_or(ArchiveError::MissingModel(id))?;
            let bits_back = BitsBack::new(net, archive.latent_bits.into())?
                .with_samples(samples as usize)
                .with_memory(memory);
            chains.push((lane.coder, Chain { bits_back }));
        }
        Ok(DecodingCoders { chains })
    }

    fn of(&self, coder: LaneCoder) -> &dyn LaneCodec {
        match coder {
            LaneCoder::BitsBack { .. } => {
                &self
                    .chains
                    .iter()
                    .find(|(c, _)| *c == coder)
                    .expect("resolved with the archive")
                    .1
            }
            LaneCoder::Context { template } => &COUNTING_MODELS[usize::from(template)],
            LaneCoder::PageMixing(Edition::First) => &PageMixing::FIRST,
            LaneCoder::PageMixing(Edition::Second) => &PageMixing::SECOND,
            LaneCoder::PageMixing(Edition::Third) => &PageMixing::THIRD,
            LaneCoder::PageMixing(Edition::Fourth) => &PageMixing::FOURTH,
            LaneCoder::Stored => &Stored,
            LaneCoder::Zstd => &Frame,
            LaneCoder::Repeat { .. } => unreachable!("repeat lanes are copied, not decoded"),
        }
    }
}

/// Decodes the lanes `planned` names in parallel, `per_task` a task: each
/// lane's strips' pixels, in order.
fn decode_wave(
    archive: &Archive,
    coders: &DecodingCoders,
    planned: &[(usize, Vec<(Segment, usize)>)],
    per_task: usize,
) -> Result<Vec<Vec<Vec<u8>>>, ArchiveError> {
    let decoded = planned
        .par_chunks(per_task)
        .map(|chunk| {
            let task: Vec<usize> = chunk.iter().map(|(k, _)| *k).collect();
            let inputs: Vec<LaneToDecode> = chunk
                .iter()
                .map(|(k, segs)| {
                    let lane = &archive.lanes[*k];
                    LaneToDecode {
                        seed_words_elided: lane.seed_words_elided,
                        state: lane.state,
                        payload: lane.payload,
                        shapes: segs.iter().map(|(s, width)| (*width, s.rows)).collect(),
                    }
                })
                .collect();
            // Lanes of one task share a coder kind, and are numbered on from the first,
            // when they can; otherwise each goes alone.
            let coder = archive.lanes[task[0]].coder;
            let consecutive = task.windows(2).all(|w| w[1] == w[0] + 1);
            if consecutive && task.iter().all(|&k| archive.lanes[k].coder == coder) {
                coders.of(coder).decode(&inputs, task[0])
            } else {
                let mut out = Vec::with_capacity(task.len());
                for (input, &k) in inputs.iter().zip(&task) {
                    out.extend(
                        coders
                            .of(archive.lanes[k].coder)
                            .decode(std::slice::from_ref(input), k)?,
                    );
                }
                Ok(out)
            }
        })
        .collect::<Result<Vec<_>, CodecError>>()?;
    Ok(decoded.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Lane, NewArchive};

    /// Pages a, b, a, b, c, c as one coded lane of the first two and repeat lanes: a and
    /// b are kept together (until the copies of each), then c alone.
    #[test]
    fn decoding_keeps_each_repeated_image_until_its_last_copy() {
        let entries: Vec<Entry> = [(10, 10), (20, 10), (10, 10), (20, 10), (5, 4), (5, 4)]
            .iter()
            .enumerate()
            .map(|(i, &(width, height))| Entry {
                name: format!("{i}.pbm"),
                format: crate::container::ImageFormat::Pbm,
                width,
                height,
            })
            .collect();
        let lane = |coder, rows, bytes| Lane {
            coder,
            rows,
            seed_words_elided: 0,
            state: 0,
            payload: vec![0; bytes],
        };
        let bytes = crate::container::write(&NewArchive {
            models: vec![],
            latent_bits: 6,
            entries: &entries,
            lanes: vec![
                lane(LaneCoder::Stored, 20, 300usize.div_ceil(8)),
                lane(LaneCoder::Repeat { back: 2 }, 20, 0),
                lane(LaneCoder::Stored, 4, 3),
                lane(LaneCoder::Repeat { back: 1 }, 4, 0),
            ],
            pixel_crc: 0,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let archive = crate::container::parse(&bytes).unwrap();
        assert_eq!(most_kept(&archive), 100 + 200 + 4 * 6);
        assert_eq!(
            last_copies(&archive, |_| true),
            [2, 3, NO_COPY, NO_COPY, 5, NO_COPY]
        );
        // Decoding only image 1 keeps nothing; decoding image 3 keeps image 1 for it.
        assert!(last_copies(&archive, |i| i == 1)
            .iter()
            .all(|&l| l == NO_COPY));
        assert_eq!(last_copies(&archive, |i| i == 3)[1], 3);
    }
}
