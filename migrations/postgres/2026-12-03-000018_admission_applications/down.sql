DROP TABLE admission_applications;
