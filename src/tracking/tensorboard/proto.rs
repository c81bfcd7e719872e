//! The protobuf messages of a TensorBoard event file that lenet writes, as prost messages.
//! Each field carries the number its schema gives it: `Event` and `SessionLog` from
//! TensorFlow's `event.proto`, `Summary` and `SummaryMetadata` from `summary.proto`, the HParams
//! plugin's `HParamsPluginData` from TensorBoard's `plugins/hparams/plugin_data.proto`, and
//! `google.protobuf.Value` from `struct.proto`. Fields lenet never sets are left out, which
//! protobuf allows: readers skip nothing they need.

/// One record of an event file: a summary, the file's version, or a session marker.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// "brain.Event:2", the first record of every file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// A session's start: TensorBoard drops what an earlier process logged at this step or later,
/// which is how a resumed run replaces the steps it repeats.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLog {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `SessionLog.SessionStatus.START`.
pub const SESSION_START: i32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// One tagged value of a summary: a number, a picture, or a plugin's data in `metadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    #[prost(oneof = "Kind", tags = "2, 4")]
    pub kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
}

/// An encoded picture (PNG) and its size.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// Which TensorBoard plugin a value is for, and that plugin's own serialised message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// The HParams plugin's record: a session's hyperparameters at its start, its status at its end.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// 0, the only version the plugin reads.
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "HParamsData", tags = "3, 4")]
    pub data: Option<HParamsData>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamsData {
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: std::collections::BTreeMap<String, ProtoValue>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// The HParams plugin's `Status` of a session that ended well.
pub const STATUS_SUCCESS: i32 = 1;

/// `google.protobuf.Value`, for the three kinds of value a config key holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    #[prost(oneof = "ProtoKind", tags = "2, 3, 4")]
    pub kind: Option<ProtoKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ProtoKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    String(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}
