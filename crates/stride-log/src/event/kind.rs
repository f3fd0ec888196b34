//! Stable on-disk numbers for event kinds. A number is assigned once and
//! never reused; the current payload schema version of each kind lives here.

use super::Event;

macro_rules! kinds {
    ($($variant:ident = $number:literal, version $version:literal;)*) => {
        /// An event kind as stored in a record header.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $($variant,)*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            pub fn number(self) -> u16 {
                match self {
                    $(Kind::$variant => $number,)*
                }
            }

            pub fn from_number(number: u16) -> Option<Kind> {
                match number {
                    $($number => Some(Kind::$variant),)*
                    _ => None,
                }
            }

            /// The payload schema version this build writes.
            pub fn current_version(self) -> u16 {
                match self {
                    $(Kind::$variant => $version,)*
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => stringify!($variant),)*
                }
            }

            pub fn from_name(name: &str) -> Option<Kind> {
                match name {
                    $(stringify!($variant) => Some(Kind::$variant),)*
                    _ => None,
                }
            }
        }

        impl Event {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Event::$variant(_) => Kind::$variant,)*
                }
            }
        }
    };
}

kinds! {
    AppCreated = 1, version 1;
    AppUpdated = 2, version 1;
    AppScaled = 3, version 1;
    AppDeleted = 4, version 1;
    DeploymentStarted = 5, version 1;
    DeploymentStepFinished = 6, version 1;
    DeploymentFinished = 7, version 1;
    DeploymentFailed = 8, version 1;
    TaskLaunchRequested = 9, version 1;
    TaskStatusRecorded = 10, version 1;
    TaskKillRequested = 11, version 1;
    TaskExpunged = 12, version 1;
    HealthChanged = 13, version 1;
    FrameworkSubscribed = 14, version 1;
    LaunchDelayReset = 15, version 1;
    CallbackSubscribed = 16, version 1;
    CallbackUnsubscribed = 17, version 1;
    TaskDraining = 18, version 1;
    DeploymentPlanned = 19, version 1;
    GroupUpdated = 20, version 1;
    GroupDeleted = 21, version 1;
    LeaderElected = 22, version 1;
}
