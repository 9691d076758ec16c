/**
 * Public constants: `TabChat.EVENT`, `TabChat.TYPES`, `TabChat.TSignaling`, `TabChat.VERSION`.
 *
 * Every `EVENT`, `TYPES` and `TSignaling` constant of the reference SDK is here, with its
 * identical value (test/compat/ checks them key by key against the reference package). They
 * are **present for compatibility**: an event fires, and a type applies, when tabchat has the
 * feature; docs/migration.md lists which do. Code written for the reference SDK that
 * subscribes to, say, `EVENT.CONVERSATION_LIST_UPDATED` at start-up therefore works; the
 * handler runs once tabchat emits that event.
 *
 * How the tables are declared (one source, two forms):
 *
 * - Types: each table is an ambient enum below (`declare enum`: names, values and docs, no
 *   code), merged with an empty real enum of the same name. As in the reference typings,
 *   `TabChat.TYPES` is then a value, a type (any of its values) and a namespace
 *   (`TabChat.TYPES.KICKED_OUT_MULT_ACCOUNT` as a type).
 * - Values: the drop-in script must define the tables synchronously and stay within its size
 *   budget (docs/architecture.md "Builds"), so the empty enums are filled at load from the
 *   packed lists {@link EVENT_LIST}, {@link TYPES_LIST}, {@link TSIGNALING_LIST}. An entry is
 *   `KEY=value` (a value of digits only is a number), or, for events, a bare `KEY` whose value
 *   is `on` + the key in PascalCase (`MESSAGE_RECEIVED` → `onMessageReceived`) or `-KEY`
 *   whose value is the key in camelCase (`-KICKED_OUT` → `kickedOut`).
 *
 * A new constant goes into both forms; the compatibility suite fails with its name until
 * both agree with the reference.
 */

/** Event names for `chat.on(name, handler)`. */
export enum EVENT {}
/** Types of `TabChat.TYPES`: message, conversation, group, kick and network values. */
export enum TYPES {}
/** Signalling constants of the reference SDK (tabchat has no signalling: present for compatibility). */
export enum TSignaling {}

/** Event names (see {@link EVENT}); events tabchat emits are documented. */
export declare enum EVENT {
  /** The instance is ready: authenticated APIs may be called. `data` is undefined. */
  SDK_READY = 'sdkStateReady',
  /** The instance left the ready state (logout, kick, lost session). `data` is undefined. */
  SDK_NOT_READY = 'sdkStateNotReady',
  /** `destroy()` released the instance (after its SDK_NOT_READY); `data` is `{SDKAppID}`. */
  SDK_DESTROY = 'sdkDestroy',
  /** Messages arrived; `data` is `Message[]`. */
  MESSAGE_RECEIVED = 'onMessageReceived',
  ROOM_CUSTOM_DATA_RECEIVED = 'onRoomCustomDataReceived',
  MESSAGE_MODIFIED = 'onMessageModified',
  MESSAGE_REVOKED = 'onMessageRevoked',
  MESSAGE_READ_BY_PEER = 'onMessageReadByPeer',
  MESSAGE_READ_RECEIPT_RECEIVED = 'onMessageReadReceiptReceived',
  MESSAGE_EXTENSIONS_UPDATED = 'onMessageExtensionsUpdated',
  MESSAGE_EXTENSIONS_DELETED = 'onMessageExtensionsDeleted',
  MESSAGE_REACTIONS_UPDATED = 'onMessageReactionsUpdated',
  CONVERSATION_LIST_UPDATED = 'onConversationListUpdated',
  TOTAL_UNREAD_MESSAGE_COUNT_UPDATED = 'onTotalUnreadMessageCountUpdated',
  CONVERSATION_GROUP_LIST_UPDATED = 'onConversationGroupListUpdated',
  CONVERSATION_IN_GROUP_UPDATED = 'onConversationInGroupUpdated',
  GROUP_LIST_UPDATED = 'onGroupListUpdated',
  GROUP_ATTRIBUTES_UPDATED = 'groupAttributesUpdated',
  GROUP_COUNTER_UPDATED = 'onGroupCounterUpdated',
  TOPIC_CREATED = 'onTopicCreated',
  TOPIC_DELETED = 'onTopicDeleted',
  TOPIC_UPDATED = 'onTopicUpdated',
  PROFILE_UPDATED = 'onProfileUpdated',
  USER_STATUS_UPDATED = 'onUserStatusUpdated',
  BLACKLIST_UPDATED = 'blacklistUpdated',
  FRIEND_LIST_UPDATED = 'onFriendListUpdated',
  FRIEND_GROUP_LIST_UPDATED = 'onFriendGroupListUpdated',
  FRIEND_APPLICATION_LIST_UPDATED = 'onFriendApplicationListUpdated',
  MY_FOLLOWERS_LIST_UPDATED = 'onMyFollowersListUpdated',
  MY_FOLLOWING_LIST_UPDATED = 'onMyFollowingListUpdated',
  MUTUAL_FOLLOWERS_LIST_UPDATED = 'onMutualFollowersListUpdated',
  /** Kicked by the server; `data` is `{type}` with a `TYPES.KICKED_OUT_*` value. Fired before SDK_NOT_READY. */
  KICKED_OUT = 'kickedOut',
  /** A call was refused by the not-ready gate, or a session was lost; `data` is `{code, message}`. */
  ERROR = 'error',
  /** Network state of a chat with a session; `data` is `{state}` with a `TYPES.NET_STATE_*` value. */
  NET_STATE_CHANGE = 'netStateChange',
  ALL_RECEIVE_MESSAGE_OPT_UPDATED = 'onAllReceiveMessageOptUpdated',
  SERVER_CONFIG_UPDATED = 'onServerConfigUpdated',
  PINNED_GROUP_MESSAGE_UPDATED = 'onPinnedGroupMessageUpdated',
}
/** The values of `TabChat.TYPES`; those tabchat uses are documented. */
export declare enum TYPES {
  /** Text message element (the message type tabchat sends). */
  MSG_TEXT = 'TIMTextElem',
  MSG_IMAGE = 'TIMImageElem',
  MSG_SOUND = 'TIMSoundElem',
  MSG_AUDIO = 'TIMSoundElem',
  MSG_FILE = 'TIMFileElem',
  MSG_FACE = 'TIMFaceElem',
  MSG_VIDEO = 'TIMVideoFileElem',
  MSG_GEO = 'TIMLocationElem',
  MSG_LOCATION = 'TIMLocationElem',
  MSG_GRP_TIP = 'TIMGroupTipElem',
  MSG_GRP_SYS_NOTICE = 'TIMGroupSystemNoticeElem',
  MSG_CUSTOM = 'TIMCustomElem',
  MSG_MERGER = 'TIMRelayElem',
  MSG_PRIORITY_HIGH = 'High',
  MSG_PRIORITY_NORMAL = 'Normal',
  MSG_PRIORITY_LOW = 'Low',
  MSG_PRIORITY_LOWEST = 'Lowest',
  /** One-to-one conversation (the conversation type tabchat sends). */
  CONV_C2C = 'C2C',
  CONV_GROUP = 'GROUP',
  CONV_TOPIC = 'TOPIC',
  CONV_SYSTEM = '@TIM#SYSTEM',
  CONV_AT_ME = 1,
  CONV_AT_ALL = 2,
  CONV_AT_ALL_AT_ME = 3,
  CONV_MARK_TYPE_STAR = 1,
  CONV_MARK_TYPE_UNREAD = 2,
  CONV_MARK_TYPE_FOLD = 4,
  CONV_MARK_TYPE_HIDE = 8,
  GRP_PRIVATE = 'Private',
  GRP_WORK = 'Private',
  GRP_PUBLIC = 'Public',
  GRP_CHATROOM = 'ChatRoom',
  GRP_MEETING = 'ChatRoom',
  GRP_AVCHATROOM = 'AVChatRoom',
  GRP_COMMUNITY = 'Community',
  GRP_ROOM = 'Room',
  GRP_LIVE = 'Live',
  GRP_MBR_ROLE_OWNER = 'Owner',
  GRP_MBR_ROLE_ADMIN = 'Admin',
  GRP_MBR_ROLE_MEMBER = 'Member',
  GRP_MBR_ROLE_CUSTOM = 'Custom',
  GRP_TIP_MBR_JOIN = 1,
  GRP_TIP_MBR_QUIT = 2,
  GRP_TIP_MBR_KICKED_OUT = 3,
  GRP_TIP_MBR_SET_ADMIN = 4,
  GRP_TIP_MBR_CANCELED_ADMIN = 5,
  GRP_TIP_GRP_PROFILE_UPDATED = 6,
  GRP_TIP_MBR_PROFILE_UPDATED = 7,
  GRP_TIP_BAN_AVCHATROOM_MEMBER = 10,
  GRP_TIP_UNBAN_AVCHATROOM_MEMBER = 11,
  MSG_REMIND_ACPT_AND_NOTE = 'AcceptAndNotify',
  MSG_REMIND_ACPT_NOT_NOTE = 'AcceptNotNotify',
  MSG_REMIND_DISCARD = 'Discard',
  RECEIVE_WITH_OFFLINE_PUSH_EXCEPT_AT = 'AcceptNotNotifyExceptAt',
  NOT_RECEIVE_OFFLINE_PUSH_EXCEPT_AT = 'AcceptNotNotifyExceptAt',
  NOT_RECEIVE_MSG_EXCEPT_AT = 'NotReceiveMsgExceptAt',
  GENDER_UNKNOWN = 'Gender_Type_Unknown',
  GENDER_FEMALE = 'Gender_Type_Female',
  GENDER_MALE = 'Gender_Type_Male',
  /** Kicked by another login instance of the same account on the same platform (instance limit). */
  KICKED_OUT_MULT_ACCOUNT = 'multipleAccount',
  /** Kicked by a login on another platform (login policy). */
  KICKED_OUT_MULT_DEVICE = 'multipleDevice',
  /** The UserSig expired while online. */
  KICKED_OUT_USERSIG_EXPIRED = 'userSigExpired',
  /** Kicked by the REST API `im_open_login_svc/kick`. */
  KICKED_OUT_REST_API = 'REST_API_Kick',
  ALLOW_TYPE_ALLOW_ANY = 'AllowType_Type_AllowAny',
  ALLOW_TYPE_NEED_CONFIRM = 'AllowType_Type_NeedConfirm',
  ALLOW_TYPE_DENY_ANY = 'AllowType_Type_DenyAny',
  FORBID_TYPE_NONE = 'AdminForbid_Type_None',
  FORBID_TYPE_SEND_OUT = 'AdminForbid_Type_SendOut',
  JOIN_OPTIONS_FREE_ACCESS = 'FreeAccess',
  JOIN_OPTIONS_NEED_PERMISSION = 'NeedPermission',
  JOIN_OPTIONS_DISABLE_APPLY = 'DisableApply',
  JOIN_STATUS_SUCCESS = 'JoinedSuccess',
  JOIN_STATUS_ALREADY_IN_GROUP = 'AlreadyInGroup',
  JOIN_STATUS_WAIT_APPROVAL = 'WaitAdminApproval',
  INVITE_OPTIONS_DISABLE_INVITE = 'DisableInvite',
  INVITE_OPTIONS_NEED_PERMISSION = 'NeedPermission',
  INVITE_OPTIONS_FREE_ACCESS = 'FreeAccess',
  GRP_PROFILE_OWNER_ID = 'ownerID',
  GRP_PROFILE_CREATE_TIME = 'createTime',
  GRP_PROFILE_LAST_INFO_TIME = 'lastInfoTime',
  GRP_PROFILE_MEMBER_NUM = 'memberNum',
  GRP_PROFILE_MAX_MEMBER_NUM = 'maxMemberNum',
  GRP_PROFILE_JOIN_OPTION = 'joinOption',
  GRP_PROFILE_INVITE_OPTION = 'inviteOption',
  GRP_PROFILE_INTRODUCTION = 'introduction',
  GRP_PROFILE_NOTIFICATION = 'notification',
  GRP_PROFILE_MUTE_ALL_MBRS = 'muteAllMembers',
  SNS_ADD_TYPE_SINGLE = 'Add_Type_Single',
  SNS_ADD_TYPE_BOTH = 'Add_Type_Both',
  SNS_DELETE_TYPE_SINGLE = 'Delete_Type_Single',
  SNS_DELETE_TYPE_BOTH = 'Delete_Type_Both',
  SNS_APPLICATION_TYPE_BOTH = 'Pendency_Type_Both',
  SNS_APPLICATION_SENT_TO_ME = 'Pendency_Type_ComeIn',
  SNS_APPLICATION_SENT_BY_ME = 'Pendency_Type_SendOut',
  SNS_APPLICATION_AGREE = 'Response_Action_Agree',
  SNS_APPLICATION_AGREE_AND_ADD = 'Response_Action_AgreeAndAdd',
  SNS_CHECK_TYPE_BOTH = 'CheckResult_Type_Both',
  SNS_CHECK_TYPE_SINGLE = 'CheckResult_Type_Single',
  SNS_TYPE_NO_RELATION = 'CheckResult_Type_NoRelation',
  SNS_TYPE_A_WITH_B = 'CheckResult_Type_AWithB',
  SNS_TYPE_B_WITH_A = 'CheckResult_Type_BWithA',
  SNS_TYPE_BOTH_WAY = 'CheckResult_Type_BothWay',
  NET_STATE_CONNECTED = 'connected',
  NET_STATE_CONNECTING = 'connecting',
  NET_STATE_DISCONNECTED = 'disconnected',
  MSG_AT_ALL = '__kImSDK_MesssageAtALL__',
  READ_ALL_C2C_MSG = 'readAllC2CMessage',
  READ_ALL_GROUP_MSG = 'readAllGroupMessage',
  READ_ALL_MSG = 'readAllMessage',
  USER_STATUS_UNKNOWN = 0,
  USER_STATUS_ONLINE = 1,
  USER_STATUS_OFFLINE = 2,
  USER_STATUS_UNLOGINED = 3,
  IOS_OFFLINE_PUSH_NO_SOUND = 'push.no_sound',
  IOS_OFFLINE_PUSH_DEFAULT_SOUND = 'default',
}
/** The values of `TabChat.TSignaling`. */
export declare enum TSignaling {
  NEW_INVITATION_RECEIVED = 'newInvitationReceived',
  INVITEE_ACCEPTED = 'ts_invitee_accepted',
  INVITEE_REJECTED = 'ts_invitee_rejected',
  INVITATION_CANCELLED = 'ts_invitation_cancelled',
  INVITATION_TIMEOUT = 'ts_invitation_timeout',
  INVITATION_MODIFIED = 'ts_invitation_modified',
  ACTION_TYPE_UNKNOWN = 0,
  ACTION_TYPE_INVITE = 1,
  ACTION_TYPE_CANCEL_INVITE = 2,
  ACTION_TYPE_ACCEPT_INVITE = 3,
  ACTION_TYPE_REJECT_INVITE = 4,
  ACTION_TYPE_INVITE_TIMEOUT = 5,
}


/** Packed {@link EVENT}: `KEY` = `on` + PascalCase, `-KEY` = camelCase, `KEY=value` as is. */
const EVENT_LIST = `
SDK_READY=sdkStateReady SDK_NOT_READY=sdkStateNotReady -SDK_DESTROY
MESSAGE_RECEIVED ROOM_CUSTOM_DATA_RECEIVED MESSAGE_MODIFIED MESSAGE_REVOKED MESSAGE_READ_BY_PEER
MESSAGE_READ_RECEIPT_RECEIVED MESSAGE_EXTENSIONS_UPDATED MESSAGE_EXTENSIONS_DELETED MESSAGE_REACTIONS_UPDATED
CONVERSATION_LIST_UPDATED TOTAL_UNREAD_MESSAGE_COUNT_UPDATED CONVERSATION_GROUP_LIST_UPDATED
CONVERSATION_IN_GROUP_UPDATED GROUP_LIST_UPDATED -GROUP_ATTRIBUTES_UPDATED
GROUP_COUNTER_UPDATED TOPIC_CREATED TOPIC_DELETED TOPIC_UPDATED
PROFILE_UPDATED USER_STATUS_UPDATED -BLACKLIST_UPDATED FRIEND_LIST_UPDATED
FRIEND_GROUP_LIST_UPDATED FRIEND_APPLICATION_LIST_UPDATED MY_FOLLOWERS_LIST_UPDATED
MY_FOLLOWING_LIST_UPDATED MUTUAL_FOLLOWERS_LIST_UPDATED -KICKED_OUT
-ERROR -NET_STATE_CHANGE ALL_RECEIVE_MESSAGE_OPT_UPDATED SERVER_CONFIG_UPDATED
PINNED_GROUP_MESSAGE_UPDATED`;

/** Packed {@link TYPES}: `KEY=value`; digits only = a number. */
const TYPES_LIST = `
MSG_TEXT=TIMTextElem MSG_IMAGE=TIMImageElem MSG_SOUND=TIMSoundElem MSG_AUDIO=TIMSoundElem MSG_FILE=TIMFileElem
MSG_FACE=TIMFaceElem MSG_VIDEO=TIMVideoFileElem MSG_GEO=TIMLocationElem MSG_LOCATION=TIMLocationElem
MSG_GRP_TIP=TIMGroupTipElem MSG_GRP_SYS_NOTICE=TIMGroupSystemNoticeElem MSG_CUSTOM=TIMCustomElem
MSG_MERGER=TIMRelayElem MSG_PRIORITY_HIGH=High MSG_PRIORITY_NORMAL=Normal MSG_PRIORITY_LOW=Low
MSG_PRIORITY_LOWEST=Lowest CONV_C2C=C2C CONV_GROUP=GROUP CONV_TOPIC=TOPIC
CONV_SYSTEM=@TIM#SYSTEM CONV_AT_ME=1 CONV_AT_ALL=2 CONV_AT_ALL_AT_ME=3 CONV_MARK_TYPE_STAR=1
CONV_MARK_TYPE_UNREAD=2 CONV_MARK_TYPE_FOLD=4 CONV_MARK_TYPE_HIDE=8
GRP_PRIVATE=Private GRP_WORK=Private GRP_PUBLIC=Public GRP_CHATROOM=ChatRoom GRP_MEETING=ChatRoom
GRP_AVCHATROOM=AVChatRoom GRP_COMMUNITY=Community GRP_ROOM=Room GRP_LIVE=Live GRP_MBR_ROLE_OWNER=Owner
GRP_MBR_ROLE_ADMIN=Admin GRP_MBR_ROLE_MEMBER=Member GRP_MBR_ROLE_CUSTOM=Custom GRP_TIP_MBR_JOIN=1
GRP_TIP_MBR_QUIT=2 GRP_TIP_MBR_KICKED_OUT=3 GRP_TIP_MBR_SET_ADMIN=4 GRP_TIP_MBR_CANCELED_ADMIN=5
GRP_TIP_GRP_PROFILE_UPDATED=6 GRP_TIP_MBR_PROFILE_UPDATED=7 GRP_TIP_BAN_AVCHATROOM_MEMBER=10
GRP_TIP_UNBAN_AVCHATROOM_MEMBER=11 MSG_REMIND_ACPT_AND_NOTE=AcceptAndNotify
MSG_REMIND_ACPT_NOT_NOTE=AcceptNotNotify MSG_REMIND_DISCARD=Discard
RECEIVE_WITH_OFFLINE_PUSH_EXCEPT_AT=AcceptNotNotifyExceptAt
NOT_RECEIVE_OFFLINE_PUSH_EXCEPT_AT=AcceptNotNotifyExceptAt NOT_RECEIVE_MSG_EXCEPT_AT=NotReceiveMsgExceptAt
GENDER_UNKNOWN=Gender_Type_Unknown GENDER_FEMALE=Gender_Type_Female GENDER_MALE=Gender_Type_Male
KICKED_OUT_MULT_ACCOUNT=multipleAccount KICKED_OUT_MULT_DEVICE=multipleDevice
KICKED_OUT_USERSIG_EXPIRED=userSigExpired KICKED_OUT_REST_API=REST_API_Kick
ALLOW_TYPE_ALLOW_ANY=AllowType_Type_AllowAny ALLOW_TYPE_NEED_CONFIRM=AllowType_Type_NeedConfirm
ALLOW_TYPE_DENY_ANY=AllowType_Type_DenyAny FORBID_TYPE_NONE=AdminForbid_Type_None
FORBID_TYPE_SEND_OUT=AdminForbid_Type_SendOut JOIN_OPTIONS_FREE_ACCESS=FreeAccess
JOIN_OPTIONS_NEED_PERMISSION=NeedPermission JOIN_OPTIONS_DISABLE_APPLY=DisableApply
JOIN_STATUS_SUCCESS=JoinedSuccess JOIN_STATUS_ALREADY_IN_GROUP=AlreadyInGroup
JOIN_STATUS_WAIT_APPROVAL=WaitAdminApproval INVITE_OPTIONS_DISABLE_INVITE=DisableInvite
INVITE_OPTIONS_NEED_PERMISSION=NeedPermission INVITE_OPTIONS_FREE_ACCESS=FreeAccess
GRP_PROFILE_OWNER_ID=ownerID GRP_PROFILE_CREATE_TIME=createTime GRP_PROFILE_LAST_INFO_TIME=lastInfoTime
GRP_PROFILE_MEMBER_NUM=memberNum GRP_PROFILE_MAX_MEMBER_NUM=maxMemberNum GRP_PROFILE_JOIN_OPTION=joinOption
GRP_PROFILE_INVITE_OPTION=inviteOption GRP_PROFILE_INTRODUCTION=introduction
GRP_PROFILE_NOTIFICATION=notification GRP_PROFILE_MUTE_ALL_MBRS=muteAllMembers
SNS_ADD_TYPE_SINGLE=Add_Type_Single SNS_ADD_TYPE_BOTH=Add_Type_Both SNS_DELETE_TYPE_SINGLE=Delete_Type_Single
SNS_DELETE_TYPE_BOTH=Delete_Type_Both SNS_APPLICATION_TYPE_BOTH=Pendency_Type_Both
SNS_APPLICATION_SENT_TO_ME=Pendency_Type_ComeIn SNS_APPLICATION_SENT_BY_ME=Pendency_Type_SendOut
SNS_APPLICATION_AGREE=Response_Action_Agree SNS_APPLICATION_AGREE_AND_ADD=Response_Action_AgreeAndAdd
SNS_CHECK_TYPE_BOTH=CheckResult_Type_Both SNS_CHECK_TYPE_SINGLE=CheckResult_Type_Single
SNS_TYPE_NO_RELATION=CheckResult_Type_NoRelation SNS_TYPE_A_WITH_B=CheckResult_Type_AWithB
SNS_TYPE_B_WITH_A=CheckResult_Type_BWithA SNS_TYPE_BOTH_WAY=CheckResult_Type_BothWay
NET_STATE_CONNECTED=connected NET_STATE_CONNECTING=connecting NET_STATE_DISCONNECTED=disconnected
MSG_AT_ALL=__kImSDK_MesssageAtALL__ READ_ALL_C2C_MSG=readAllC2CMessage
READ_ALL_GROUP_MSG=readAllGroupMessage READ_ALL_MSG=readAllMessage
USER_STATUS_UNKNOWN=0 USER_STATUS_ONLINE=1 USER_STATUS_OFFLINE=2 USER_STATUS_UNLOGINED=3
IOS_OFFLINE_PUSH_NO_SOUND=push.no_sound IOS_OFFLINE_PUSH_DEFAULT_SOUND=default`;

/** Packed {@link TSignaling}, same format as {@link TYPES_LIST}. */
const TSIGNALING_LIST = `
NEW_INVITATION_RECEIVED=newInvitationReceived INVITEE_ACCEPTED=ts_invitee_accepted
INVITEE_REJECTED=ts_invitee_rejected INVITATION_CANCELLED=ts_invitation_cancelled
INVITATION_TIMEOUT=ts_invitation_timeout INVITATION_MODIFIED=ts_invitation_modified
ACTION_TYPE_UNKNOWN=0 ACTION_TYPE_INVITE=1 ACTION_TYPE_CANCEL_INVITE=2 ACTION_TYPE_ACCEPT_INVITE=3
ACTION_TYPE_REJECT_INVITE=4 ACTION_TYPE_INVITE_TIMEOUT=5`;

/** Fill `table` from a packed list, then freeze it. */
function fill(table: object, list: string): void {
  const target = table as Record<string, string | number>;
  for (const entry of list.trim().split(/\s+/)) {
    const [name = '', value] = entry.split('=');
    const key = name.replace('-', '');
    const camel = key.toLowerCase().replace(/_(.)/g, (_, letter: string) => letter.toUpperCase());
    target[key] =
      value === undefined ? (name === key ? 'on' + camel[0]!.toUpperCase() + camel.slice(1) : camel) : /^\d+$/.test(value) ? Number(value) : value;
  }
  Object.freeze(table);
}
fill(EVENT, EVENT_LIST);
fill(TYPES, TYPES_LIST);
fill(TSignaling, TSIGNALING_LIST);

/** The tabchat version (same as package.json). */
export const VERSION = '0.1.0';
