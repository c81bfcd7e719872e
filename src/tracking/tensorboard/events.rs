//! One event file: TensorBoard's records (scalars, pictures, the HParams plugin's session
//! records and markers) encoded and appended.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use image::ImageDecoder;
use prost::Message;
use serde_json::Value as Json;

use super::proto::{
    self, Event, HParamsData, HParamsPluginData, Image, Kind, PluginData, ProtoKind, ProtoValue,
    SessionEndInfo, SessionLog, SessionStartInfo, Summary, SummaryMetadata, Value, What,
};
use super::record;
use crate::tracking::TrackingError;

/// The tags the HParams plugin reads its records under (the plugin's own constants).
const HPARAMS_PLUGIN: &str = "hparams";
const SESSION_START_TAG: &str = "_hparams_/session_start_info";
const SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// One process's event file in a run's `tensorboard/` folder.
pub struct EventWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `dir` (made if missing). `resumed_at` is the global step a continued
    /// run trains next; TensorBoard then drops what earlier files logged from there on.
    pub fn create(dir: &Path, resumed_at: Option<i64>) -> Result<Self, TrackingError> {
        fs::create_dir_all(dir).map_err(TrackingError::io(dir))?;
        let (file, path) = new_file(dir)?;
        let mut writer = Self {
            file: BufWriter::new(file),
            path,
        };
        writer.write(0, What::FileVersion("brain.Event:2".to_string()))?;
        if let Some(step) = resumed_at {
            let start = SessionLog {
                status: proto::SESSION_START,
            };
            writer.write(step, What::SessionLog(start))?;
        }
        Ok(writer)
    }

    /// A number, shown as a chart under its tag ("valid/accuracy").
    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<(), TrackingError> {
        self.summary(step, tag, None, Some(Kind::SimpleValue(value as f32)))
    }

    /// A PNG picture, shown in the Images tab.
    pub fn image(&mut self, tag: &str, step: i64, png: &[u8]) -> Result<(), TrackingError> {
        let (width, height, channels) = png_shape(png).map_err(|e| TrackingError::Picture {
            tag: tag.to_string(),
            message: e.to_string(),
        })?;
        let image = Image {
            height: height as i32,
            width: width as i32,
            colorspace: i32::from(channels),
            encoded_image_string: png.to_vec(),
        };
        self.summary(step, tag, None, Some(Kind::Image(image)))
    }

    /// The run's hyperparameters, for the HParams tab; `group` names the run there.
    pub fn hparams(&mut self, params: &[(String, Json)], group: &str) -> Result<(), TrackingError> {
        let hparams = params
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), hparam(value)?)))
            .collect();
        let start = SessionStartInfo {
            hparams,
            group_name: group.to_string(),
            start_time_secs: now(),
        };
        self.plugin_record(SESSION_START_TAG, HParamsData::SessionStartInfo(start))
    }

    /// That the run finished, for the HParams tab's status column.
    pub fn finished(&mut self) -> Result<(), TrackingError> {
        let end = SessionEndInfo {
            status: proto::STATUS_SUCCESS,
            end_time_secs: now(),
        };
        self.plugin_record(SESSION_END_TAG, HParamsData::SessionEndInfo(end))?;
        self.flush()
    }

    /// Puts what was logged on disk.
    pub fn flush(&mut self) -> Result<(), TrackingError> {
        self.file.flush().map_err(TrackingError::io(&self.path))
    }

    fn plugin_record(&mut self, tag: &str, data: HParamsData) -> Result<(), TrackingError> {
        let content = HParamsPluginData {
            version: 0,
            data: Some(data),
        };
        let metadata = SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: HPARAMS_PLUGIN.to_string(),
                content: content.encode_to_vec(),
            }),
        };
        self.summary(0, tag, Some(metadata), None)
    }

    fn summary(
        &mut self,
        step: i64,
        tag: &str,
        metadata: Option<SummaryMetadata>,
        kind: Option<Kind>,
    ) -> Result<(), TrackingError> {
        let value = Value {
            tag: tag.to_string(),
            metadata,
            kind,
        };
        self.write(step, What::Summary(Summary { value: vec![value] }))
    }

    fn write(&mut self, step: i64, what: What) -> Result<(), TrackingError> {
        let event = Event {
            wall_time: now(),
            step,
            what: Some(what),
        };
        self.file
            .write_all(&record::framed(&event.encode_to_vec()))
            .map_err(TrackingError::io(&self.path))
    }
}

/// A file of its own for this process, named as TensorBoard expects (`events.out.tfevents.`,
/// the time, then anything): never one an earlier process wrote.
fn new_file(dir: &Path) -> Result<(File, PathBuf), TrackingError> {
    let seconds = now() as u64;
    let pid = std::process::id();
    for attempt in 0.. {
        let path = dir.join(format!(
            "events.out.tfevents.{seconds}.lenet.{pid}.{attempt}"
        ));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TrackingError::io(&path)(e)),
        }
    }
    unreachable!("some attempt number names a new file")
}

/// A config value as the HParams plugin takes it: numbers, text and switches; lists as text.
fn hparam(value: &Json) -> Option<ProtoValue> {
    let kind = match value {
        Json::Null => return None,
        Json::Bool(b) => ProtoKind::Bool(*b),
        Json::Number(n) => ProtoKind::Number(n.as_f64()?),
        Json::String(s) => ProtoKind::String(s.clone()),
        other => ProtoKind::String(other.to_string()),
    };
    Some(ProtoValue { kind: Some(kind) })
}

/// Width, height and channels of a PNG, from its header.
fn png_shape(png: &[u8]) -> Result<(u32, u32, u8), image::ImageError> {
    let decoder = image::codecs::png::PngDecoder::new(Cursor::new(png))?;
    let (width, height) = decoder.dimensions();
    Ok((width, height, decoder.color_type().channel_count()))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
