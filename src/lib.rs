pub mod etl;
