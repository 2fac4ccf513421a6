pub mod etl;
pub mod output;
