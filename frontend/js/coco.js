// The 17 COCO keypoints and the bones drawn between them (indices into a pose's points).

export const COCO_KEYPOINTS = Object.freeze([
  "nose", "left_eye", "right_eye", "left_ear", "right_ear",
  "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]);

export const COCO_SKELETON = Object.freeze([
  [0, 1], [0, 2], [1, 3], [2, 4], // head
  [5, 6], [5, 11], [6, 12], [11, 12], // torso
  [5, 7], [7, 9], [6, 8], [8, 10], // arms
  [11, 13], [13, 15], [12, 14], [14, 16], // legs
]);
